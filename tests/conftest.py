"""Shared fixtures: users with each role, the public data set, the sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

PUBLIC_DATA = settings.BASE_DIR.parent / "shared" / "data" / "bank_transactions_data.csv"
SAMPLE_CSV = settings.BASE_DIR / "fixtures" / "sample_transactions.csv"
SAMPLE_LABELS = settings.BASE_DIR / "fixtures" / "sample_labels.csv"


@pytest.fixture
def public_data() -> Path:
    if not PUBLIC_DATA.exists():
        pytest.skip("the public data set is not on this machine")
    return PUBLIC_DATA


@pytest.fixture(autouse=True)
def _artifacts_dir(settings, tmp_path_factory):
    # Each test writes model artifacts into its own folder, never the repo's.
    settings.ML_ARTIFACTS_DIR = tmp_path_factory.mktemp("artifacts")


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("viewer", password="viewer-pass-123")


@pytest.fixture
def analyst(django_user_model):
    from detection.bootstrap import analyst_group_ensure

    user = django_user_model.objects.create_user("analyst", password="analyst-pass-123")
    user.groups.add(analyst_group_ensure())
    return user


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staff", password="staff-pass-123", is_staff=True)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    # SQLite tests run on a file, like the product, not on Django's default
    # shared-cache memory database: there, concurrent connections (a live
    # server's request threads) fail at once with "database table is locked"
    # instead of waiting on the busy timeout as real SQLite does.
    for database in settings.DATABASES.values():
        if database["ENGINE"].endswith("sqlite3"):
            folder = tmp_path_factory.mktemp("sqlite")
            database.setdefault("TEST", {})["NAME"] = str(folder / "test.sqlite3")
