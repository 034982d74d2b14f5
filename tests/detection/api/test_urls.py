"""Every API route reverses to its path and resolves back to its view."""

from __future__ import annotations

import pytest
from django.urls import resolve, reverse

from detection.api.docs import RedocView
from detection.api.errors import UnknownPathView
from detection.api.health import HealthView, ReadyView
from detection.api.model_versions import (
    ModelVersionActivateView,
    ModelVersionDetailView,
    ModelVersionListView,
)
from detection.api.predict import ModelPredictView, PredictView
from detection.api.reviews import ReviewView
from detection.api.transactions import (
    AccountTransactionListView,
    TransactionDetailView,
    TransactionListView,
)


@pytest.mark.parametrize(
    ("name", "kwargs", "path", "view"),
    [
        ("api:health", {}, "/api/health/", HealthView),
        ("api:ready", {}, "/api/ready/", ReadyView),
        ("api:models", {}, "/api/models/", ModelVersionListView),
        ("api:model", {"pk": 3}, "/api/models/3/", ModelVersionDetailView),
        ("api:model-activate", {"pk": 3}, "/api/models/3/activate/", ModelVersionActivateView),
        (
            "api:model-predict",
            {"algorithm": "isolation_forest"},
            "/api/models/isolation_forest/predict/",
            ModelPredictView,
        ),
        ("api:predict", {}, "/api/predict/", PredictView),
        ("api:transactions", {}, "/api/transactions/", TransactionListView),
        (
            "api:transaction",
            {"transaction_id": "TX1"},
            "/api/transactions/TX1/",
            TransactionDetailView,
        ),
        (
            "api:transaction-review",
            {"transaction_id": "TX1"},
            "/api/transactions/TX1/review/",
            ReviewView,
        ),
        (
            "api:account-transactions",
            {"account_id": "AC1"},
            "/api/accounts/AC1/transactions/",
            AccountTransactionListView,
        ),
        ("api:redoc", {}, "/api/redoc/", RedocView),
    ],
)
def test_it_reverses_and_resolves_each_route(name, kwargs, path, view):
    assert reverse(name, kwargs=kwargs) == path
    assert resolve(path).func.view_class is view


def test_it_sends_any_other_api_path_to_the_json_404_view():
    assert resolve("/api/no/such/thing/").func.view_class is UnknownPathView
