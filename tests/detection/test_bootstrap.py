"""First-run setup: one local admin, its credentials kept private and re-read."""

from __future__ import annotations

import json
import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token

from detection.bootstrap import ANALYST_GROUP, analyst_group_ensure, local_admin_ensure
from detection.models import ModelVersion

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def credentials(tmp_path):
    return tmp_path / "var" / "local_admin.json"


def test_it_creates_a_superuser_with_a_random_password(credentials):
    admin = local_admin_ensure(credentials_file=credentials)

    user = User.objects.get(username="admin")
    assert admin.username == "admin"
    assert user.is_staff and user.is_superuser and user.is_active
    assert user.check_password(admin.password)
    assert len(admin.password) >= 16
    assert user.groups.filter(name=ANALYST_GROUP).exists()


def test_it_gives_each_machine_its_own_password(tmp_path):
    first = local_admin_ensure(credentials_file=tmp_path / "a.json", username="first")
    second = local_admin_ensure(credentials_file=tmp_path / "b.json", username="second")

    assert first.password != second.password
    assert first.token != second.token


def test_it_writes_the_credentials_readable_by_the_owner_only(credentials):
    admin = local_admin_ensure(credentials_file=credentials)

    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert json.loads(credentials.read_text()) == {
        "username": "admin",
        "password": admin.password,
    }


def test_it_tightens_a_credentials_file_that_was_readable_by_others(credentials):
    credentials.parent.mkdir(parents=True)
    credentials.write_text("{}")
    credentials.chmod(0o644)

    local_admin_ensure(credentials_file=credentials)

    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def test_it_creates_the_admin_once_and_reads_it_back_later(credentials):
    first = local_admin_ensure(credentials_file=credentials)
    written = credentials.read_text()

    second = local_admin_ensure(credentials_file=credentials)

    assert second == first
    assert User.objects.filter(username="admin").count() == 1
    assert Token.objects.count() == 1
    assert credentials.read_text() == written
    assert User.objects.get(username="admin").check_password(first.password)


def test_its_token_authenticates_api_requests(credentials, client):
    admin = local_admin_ensure(credentials_file=credentials)

    anonymous = client.get("/api/models/")
    with_token = client.get("/api/models/", HTTP_AUTHORIZATION=f"Token {admin.token}")
    wrong_token = client.get("/api/models/", HTTP_AUTHORIZATION=f"Token {admin.token[::-1]}")

    assert anonymous.status_code == 401
    assert with_token.status_code == 200
    assert wrong_token.status_code == 401


def test_its_password_logs_in(credentials, client):
    admin = local_admin_ensure(credentials_file=credentials)

    response = client.post(
        reverse("dashboard:login"), {"username": admin.username, "password": admin.password}
    )

    assert response.status_code == 302
    assert response.wsgi_request.user.username == "admin"


def test_it_resets_the_password_when_the_saved_one_no_longer_works(credentials):
    first = local_admin_ensure(credentials_file=credentials)
    user = User.objects.get(username="admin")
    user.set_password("changed-by-someone-else")
    user.save()

    second = local_admin_ensure(credentials_file=credentials)

    assert second.password != first.password
    assert User.objects.get(username="admin").check_password(second.password)
    assert json.loads(credentials.read_text())["password"] == second.password
    assert User.objects.filter(username="admin").count() == 1


def test_it_recreates_the_admin_when_the_user_was_deleted(credentials):
    local_admin_ensure(credentials_file=credentials)
    User.objects.filter(username="admin").delete()

    admin = local_admin_ensure(credentials_file=credentials)

    user = User.objects.get(username="admin")
    assert user.is_superuser
    assert user.check_password(admin.password)
    assert Token.objects.get(user=user).key == admin.token


@pytest.mark.parametrize(
    "content", ["", "{not json", "[]", '{"username": "admin"}', '"admin"', "\x00\x01"]
)
def test_it_replaces_an_unreadable_credentials_file(credentials, content):
    # A half-written or hand-edited file must not stop `make run` with a traceback.
    credentials.parent.mkdir(parents=True)
    credentials.write_text(content)

    admin = local_admin_ensure(credentials_file=credentials)

    assert User.objects.get(username="admin").check_password(admin.password)
    assert json.loads(credentials.read_text())["password"] == admin.password


def test_it_makes_the_analyst_group_once():
    first = analyst_group_ensure()
    second = analyst_group_ensure()

    assert first == second
    assert first.name == "analyst"
    assert Group.objects.filter(name="analyst").count() == 1


def test_the_command_prints_the_same_credentials_on_every_run(settings, tmp_path, public_data):
    # Stored transactions and an active model: the command only ensures the admin.
    from detection.importer import import_transactions_csv

    settings.VAR_DIR = tmp_path
    import_transactions_csv(path=public_data)
    ModelVersion.objects.create(
        algorithm="isolation_forest",
        version=1,
        is_active=True,
        threshold=0.5,
        training_rows=1,
        artifact_path="x",
        sha256="0" * 64,
        format_version=1,
        sklearn_version="1",
    )

    outputs = []
    for _ in range(2):
        out = StringIO()
        call_command("bootstrap_local", stdout=out)
        outputs.append(out.getvalue())

    admin = local_admin_ensure(credentials_file=tmp_path / "local_admin.json")
    assert outputs[0] == outputs[1]
    assert f"username: admin  password: {admin.password}" in outputs[0]
    assert f"API token    {admin.token}" in outputs[0]
    assert stat.S_IMODE((tmp_path / "local_admin.json").stat().st_mode) == 0o600
