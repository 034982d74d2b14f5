"""Dashboard test data, built once per test module.

``scored`` stores a history, trains both detectors and scores everything
inside a transaction that is rolled back when the module ends: each test (in
its own savepoint) sees the same data and no other module sees any of it. The
browser suite cannot share it (its live server needs committed rows) and
builds its own.
"""

from __future__ import annotations

import pytest

from tests.dashboard.factories import module_scored_history


@pytest.fixture(scope="module")
def module_artifacts(tmp_path_factory):
    return tmp_path_factory.mktemp("dashboard-artifacts")


@pytest.fixture(autouse=True)
def _artifacts_dir(settings, module_artifacts):
    # Replaces the root conftest's per-test folder: the versions a module
    # trains must stay readable by every test of the module.
    settings.ML_ARTIFACTS_DIR = module_artifacts


@pytest.fixture(scope="module")
def scored(django_db_setup, django_db_blocker, module_artifacts):
    with module_scored_history(django_db_blocker, module_artifacts) as history:
        yield history
