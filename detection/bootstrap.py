"""First-run setup for a local machine: sample data, models, an admin user."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

ANALYST_GROUP = "analyst"


@dataclass(frozen=True)
class LocalAdmin:
    username: str
    password: str
    token: str


def analyst_group_ensure() -> Group:
    group, _ = Group.objects.get_or_create(name=ANALYST_GROUP)
    return group


def local_admin_ensure(*, credentials_file: Path, username: str = "admin") -> LocalAdmin:
    """Create the local admin once; later runs read its credentials back.

    The password is random and kept only in a git-ignored file readable by its
    owner, so nothing guessable ships with the product.
    """
    User = get_user_model()
    if credentials_file.exists():
        saved = json.loads(credentials_file.read_text())
        user = User.objects.filter(username=saved["username"]).first()
        if user is not None and user.check_password(saved["password"]):
            token, _ = Token.objects.get_or_create(user=user)
            return LocalAdmin(saved["username"], saved["password"], token.key)
    password = secrets.token_urlsafe(12)
    user, _ = User.objects.get_or_create(username=username, defaults={"email": ""})
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    user.groups.add(analyst_group_ensure())
    token, _ = Token.objects.get_or_create(user=user)
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    credentials_file.write_text(json.dumps({"username": username, "password": password}))
    credentials_file.chmod(0o600)
    return LocalAdmin(username, password, token.key)
