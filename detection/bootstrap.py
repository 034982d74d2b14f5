"""First-run setup for a local machine: sample data, models, an admin user."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
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
    saved = _saved_credentials(credentials_file)
    if saved is not None:
        user = User.objects.filter(username=saved[0]).first()
        if user is not None and user.check_password(saved[1]):
            token, _ = Token.objects.get_or_create(user=user)
            return LocalAdmin(saved[0], saved[1], token.key)
    password = secrets.token_urlsafe(12)
    user, _ = User.objects.get_or_create(username=username, defaults={"email": ""})
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    user.groups.add(analyst_group_ensure())
    token, _ = Token.objects.get_or_create(user=user)
    _write_private(credentials_file, json.dumps({"username": username, "password": password}))
    return LocalAdmin(username, password, token.key)


def _saved_credentials(path: Path) -> tuple[str, str] | None:
    # A missing, half-written or hand-edited file means "make new ones", not a
    # traceback on `make run`.
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict):
        return None
    username, password = saved.get("username"), saved.get("password")
    if isinstance(username, str) and isinstance(password, str):
        return username, password
    return None


def _write_private(path: Path, text: str) -> None:
    # mkstemp creates the file 0600, so the password is never readable by
    # others, not even between writing and chmod; the rename makes the new
    # file appear whole or not at all.
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
