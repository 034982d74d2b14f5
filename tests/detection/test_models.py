"""Database constraints: enforced by the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from detection.models import (
    Algorithm,
    ModelVersion,
    Prediction,
    Review,
    ReviewEvent,
    ReviewStatus,
    Transaction,
)
from tests.factories import item

pytestmark = pytest.mark.django_db


def _transaction(transaction_id: str = "TX000001", **overrides: Any) -> Transaction:
    """A stored transaction; overrides are model values, unchecked by the schema."""
    fields = {**item(transaction_id=transaction_id).as_row(), **overrides}
    return Transaction.objects.create(**fields)


def _version(algorithm: str = Algorithm.ISOLATION_FOREST, version: int = 1, **overrides: Any):
    fields: dict[str, Any] = {
        "algorithm": algorithm,
        "version": version,
        "threshold": 0.5,
        "training_rows": 1000,
        "artifact_path": f"{algorithm}-v{version}.joblib",
        "sha256": "0" * 64,
        "format_version": 1,
        "sklearn_version": "1.6.1",
        **overrides,
    }
    return ModelVersion.objects.create(**fields)


def _prediction(tx: Transaction, version: ModelVersion, **overrides: Any) -> Prediction:
    fields: dict[str, Any] = {
        "transaction": tx,
        "model_version": version,
        "score": 0.7,
        "threshold": 0.5,
        "is_anomaly": True,
        "scored_at": timezone.now(),
        **overrides,
    }
    return Prediction.objects.create(**fields)


# --- model versions --------------------------------------------------------


def test_it_allows_one_active_version_per_algorithm():
    _version(version=1, is_active=True)

    with pytest.raises(IntegrityError), transaction.atomic():
        _version(version=2, is_active=True)

    assert ModelVersion.objects.filter(is_active=True).count() == 1


def test_it_allows_an_active_version_of_each_algorithm():
    _version(Algorithm.ISOLATION_FOREST, is_active=True)
    _version(Algorithm.LOCAL_OUTLIER_FACTOR, is_active=True)

    assert ModelVersion.objects.filter(is_active=True).count() == 2


def test_it_allows_any_number_of_inactive_versions():
    for number in range(1, 4):
        _version(version=number, is_active=False)
    _version(version=4, is_active=True)

    assert ModelVersion.objects.count() == 4


def test_it_refuses_activating_a_second_version_by_update():
    _version(version=1, is_active=True)
    second = _version(version=2)

    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=second.pk).update(is_active=True)


def test_it_switches_the_active_version_when_the_old_one_is_deactivated_first():
    first = _version(version=1, is_active=True)
    second = _version(version=2)

    with transaction.atomic():
        ModelVersion.objects.filter(pk=first.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=second.pk).update(is_active=True)

    assert list(ModelVersion.objects.filter(is_active=True)) == [second]


def test_it_refuses_a_repeated_version_number_for_one_algorithm():
    _version(Algorithm.ISOLATION_FOREST, version=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        _version(Algorithm.ISOLATION_FOREST, version=1)


def test_it_allows_the_same_version_number_for_different_algorithms():
    _version(Algorithm.ISOLATION_FOREST, version=1)
    _version(Algorithm.LOCAL_OUTLIER_FACTOR, version=1)

    assert ModelVersion.objects.filter(version=1).count() == 2


def test_it_lists_versions_by_algorithm_newest_first():
    _version(Algorithm.LOCAL_OUTLIER_FACTOR, version=1)
    _version(Algorithm.ISOLATION_FOREST, version=1)
    _version(Algorithm.ISOLATION_FOREST, version=2)

    listed = [(v.algorithm, v.version) for v in ModelVersion.objects.all()]

    assert listed == [
        (Algorithm.ISOLATION_FOREST, 2),
        (Algorithm.ISOLATION_FOREST, 1),
        (Algorithm.LOCAL_OUTLIER_FACTOR, 1),
    ]


# --- predictions -----------------------------------------------------------


def test_it_refuses_a_second_prediction_for_the_same_transaction_and_version():
    tx = _transaction()
    version = _version()
    _prediction(tx, version)

    with pytest.raises(IntegrityError), transaction.atomic():
        _prediction(tx, version, score=0.1, is_anomaly=False)

    assert Prediction.objects.get().score == 0.7


def test_it_keeps_predictions_of_different_versions_for_one_transaction():
    tx = _transaction()
    _prediction(tx, _version(Algorithm.ISOLATION_FOREST))
    _prediction(tx, _version(Algorithm.LOCAL_OUTLIER_FACTOR))
    _prediction(tx, _version(Algorithm.ISOLATION_FOREST, version=2))

    assert tx.predictions.count() == 3


def test_it_protects_a_model_version_that_has_predictions():
    version = _version()
    _prediction(_transaction(), version)

    with pytest.raises(ProtectedError), transaction.atomic():
        version.delete()

    assert ModelVersion.objects.filter(pk=version.pk).exists()
    assert Prediction.objects.count() == 1


def test_it_deletes_a_model_version_without_predictions():
    version = _version()

    version.delete()

    assert not ModelVersion.objects.exists()


def test_it_deletes_the_predictions_with_their_transaction():
    tx = _transaction()
    version = _version()
    _prediction(tx, version)

    tx.delete()

    assert not Prediction.objects.exists()
    assert ModelVersion.objects.filter(pk=version.pk).exists()


# --- transactions ----------------------------------------------------------


def test_it_refuses_a_repeated_transaction_id():
    _transaction("TX000001", account_id="AC00128")

    with pytest.raises(IntegrityError), transaction.atomic():
        _transaction("TX000001", account_id="AC99999")

    assert Transaction.objects.get().account_id == "AC00128"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", Decimal("-0.01")),
        ("amount", Decimal("1000000.01")),
        ("customer_age", 17),
        ("customer_age", 121),
        ("duration_seconds", 10_001),
        ("duration_seconds", -1),
        ("login_attempts", 11),
        ("login_attempts", -1),
        ("account_balance", Decimal("-0.01")),
        ("account_balance", Decimal("10000000.01")),
    ],
)
def test_it_refuses_an_out_of_range_value_in_the_database(field, value):
    with pytest.raises(IntegrityError), transaction.atomic():
        _transaction(**{field: value})

    assert not Transaction.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", Decimal("0")),
        ("amount", Decimal("1000000")),
        ("customer_age", 18),
        ("customer_age", 120),
        ("duration_seconds", 0),
        ("duration_seconds", 10_000),
        ("login_attempts", 0),
        ("login_attempts", 10),
        ("account_balance", Decimal("0")),
        ("account_balance", Decimal("10000000")),
    ],
)
def test_it_accepts_the_edges_of_each_range(field, value):
    _transaction(**{field: value})

    assert getattr(Transaction.objects.get(), field) == value


def test_it_stores_a_transaction_without_a_previous_date_or_verdict():
    tx = _transaction(previous_transaction_at=None)
    tx.refresh_from_db()

    assert tx.previous_transaction_at is None
    assert tx.flagged is None
    assert tx.received_at is not None


def test_it_lists_transactions_newest_first():
    _transaction("TX1", timestamp=datetime(2023, 1, 1, tzinfo=UTC))
    _transaction("TX2", timestamp=datetime(2023, 3, 1, tzinfo=UTC))
    _transaction("TX3", timestamp=datetime(2023, 2, 1, tzinfo=UTC))

    assert [tx.transaction_id for tx in Transaction.objects.all()] == ["TX2", "TX3", "TX1"]


# --- reviews ---------------------------------------------------------------


def test_it_allows_one_review_per_transaction():
    tx = _transaction()
    Review.objects.create(transaction=tx)

    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.create(transaction=tx, status=ReviewStatus.CONFIRMED_FRAUD)


def test_it_starts_a_review_as_pending():
    review = Review.objects.create(transaction=_transaction())
    review.refresh_from_db()

    assert review.status == ReviewStatus.PENDING


def test_it_keeps_the_history_of_a_review(django_user_model):
    analyst = django_user_model.objects.create_user("analyst-a")
    other = django_user_model.objects.create_user("analyst-b")
    review = Review.objects.create(transaction=_transaction(), reviewer=analyst)
    for status, reviewer, note in [
        (ReviewStatus.PENDING, analyst, "looking"),
        (ReviewStatus.CONFIRMED_FRAUD, analyst, "card reported stolen"),
        (ReviewStatus.FALSE_POSITIVE, other, "customer confirmed"),
    ]:
        review.status, review.reviewer, review.note = status, reviewer, note
        review.save()
        ReviewEvent.objects.create(review=review, status=status, reviewer=reviewer, note=note)

    review.refresh_from_db()
    history = [(event.status, event.reviewer, event.note) for event in review.events.all()]

    assert review.status == ReviewStatus.FALSE_POSITIVE
    assert history == [
        (ReviewStatus.FALSE_POSITIVE, other, "customer confirmed"),
        (ReviewStatus.CONFIRMED_FRAUD, analyst, "card reported stolen"),
        (ReviewStatus.PENDING, analyst, "looking"),
    ]


def test_it_keeps_review_history_when_the_reviewer_is_deleted(django_user_model):
    analyst = django_user_model.objects.create_user("analyst-a")
    review = Review.objects.create(
        transaction=_transaction(), reviewer=analyst, status=ReviewStatus.CONFIRMED_FRAUD
    )
    ReviewEvent.objects.create(review=review, status=ReviewStatus.CONFIRMED_FRAUD, reviewer=analyst)

    analyst.delete()
    review.refresh_from_db()

    assert review.reviewer is None
    assert review.status == ReviewStatus.CONFIRMED_FRAUD
    event = review.events.get()
    assert event.reviewer is None
    assert event.status == ReviewStatus.CONFIRMED_FRAUD


def test_it_deletes_the_review_and_its_history_with_the_transaction():
    tx = _transaction()
    review = Review.objects.create(transaction=tx)
    ReviewEvent.objects.create(review=review, status=ReviewStatus.PENDING)

    tx.delete()

    assert not Review.objects.exists()
    assert not ReviewEvent.objects.exists()
