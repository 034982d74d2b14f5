"""Test settings: the real settings with fast hashing and quiet logs."""

from anomaly.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AXES_ENABLED = True
