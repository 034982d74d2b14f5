"""Test settings: the real settings with fast hashing."""

from anomaly.settings import *  # noqa: F403
from anomaly.settings import DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests never run collectstatic; whitenoise finds files on request instead.
WHITENOISE_AUTOREFRESH = True

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # pytest-django only recognises Django's own SQLite engine as in-memory;
    # with the django-prometheus wrapper it would derive a file name from the
    # absolute path and each xdist worker would fail to open it.
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
