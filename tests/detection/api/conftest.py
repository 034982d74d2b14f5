"""Trained models for the API tests, trained once per session.

Training writes artifacts into a session folder and its rows are rolled back,
so no test (ours or anyone else's) sees them unless it asks: ``trained``
re-inserts the history and the two model version rows into the test's own
database and points ML_ARTIFACTS_DIR at the session folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

from detection.models import Algorithm, ModelVersion
from detection.schema import TransactionIn, validate_transaction
from detection.store import transactions_insert
from detection.training import models_train
from tests.detection.api.factories import VERSION_FIELDS, Trained, history_payloads


@dataclass(frozen=True)
class TrainedState:
    folder: Path
    history: list[TransactionIn]
    versions: list[dict[str, Any]]


@pytest.fixture(scope="session")
def trained_state(django_db_setup, django_db_blocker, tmp_path_factory) -> TrainedState:
    folder = tmp_path_factory.mktemp("trained-artifacts")
    history = [validate_transaction(payload) for payload in history_payloads()]
    with (
        django_db_blocker.unblock(),
        override_settings(ML_ARTIFACTS_DIR=folder),
        transaction.atomic(),
    ):
        transactions_insert(items=history)
        models_train()
        versions = [
            {name: getattr(mv, name) for name in VERSION_FIELDS}
            for mv in ModelVersion.objects.order_by("algorithm")
        ]
        transaction.set_rollback(True)
    return TrainedState(folder=folder, history=history, versions=versions)


@pytest.fixture
def trained(trained_state: TrainedState, settings) -> Trained:
    """History and an active, verified version of each model in this test's DB."""
    settings.ML_ARTIFACTS_DIR = trained_state.folder
    transactions_insert(items=trained_state.history)
    versions = {
        fields["algorithm"]: ModelVersion.objects.create(**fields)
        for fields in trained_state.versions
    }
    assert set(versions) == set(Algorithm.values)
    return Trained(versions=versions, folder=trained_state.folder)


def _client_for(user) -> Client:
    token, _ = Token.objects.get_or_create(user=user)
    return Client(headers={"Authorization": f"Token {token.key}"})


@pytest.fixture
def anon_client() -> Client:
    return Client()


@pytest.fixture
def user_client(user) -> Client:
    return _client_for(user)


@pytest.fixture
def analyst_client(analyst) -> Client:
    return _client_for(analyst)


@pytest.fixture
def staff_client(staff) -> Client:
    return _client_for(staff)
