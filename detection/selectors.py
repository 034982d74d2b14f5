"""Reads shared by the API, the pages and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from detection.models import ModelVersion, Prediction, ReviewStatus, Transaction


@dataclass(frozen=True)
class TransactionFilters:
    account_id: str | None = None
    flagged: bool | None = None
    review_status: str | None = None  # a ReviewStatus value, or "unreviewed"
    model_version_id: int | None = None  # only transactions that version called anomalous
    since: datetime | None = None
    until: datetime | None = None


def transactions_list(*, filters: TransactionFilters) -> QuerySet[Transaction]:
    """Transactions newest first with their review and predictions in a fixed
    number of queries, whatever the page size."""
    queryset = Transaction.objects.select_related("review").prefetch_related(
        Prefetch(
            "predictions",
            queryset=Prediction.objects.select_related("model_version").order_by(
                "model_version__algorithm", "-model_version__version"
            ),
        )
    )
    if filters.account_id:
        queryset = queryset.filter(account_id=filters.account_id)
    if filters.flagged is not None:
        queryset = queryset.filter(flagged=filters.flagged)
    if filters.review_status == "unreviewed":
        queryset = queryset.filter(review__isnull=True)
    elif filters.review_status in ReviewStatus.values:
        queryset = queryset.filter(review__status=filters.review_status)
    if filters.model_version_id is not None:
        queryset = queryset.filter(
            predictions__model_version_id=filters.model_version_id, predictions__is_anomaly=True
        )
    if filters.since:
        queryset = queryset.filter(timestamp__gte=filters.since)
    if filters.until:
        queryset = queryset.filter(timestamp__lt=filters.until)
    return queryset.order_by("-timestamp", "-id")


def transaction_get(*, transaction_id: str) -> Transaction | None:
    return (
        transactions_list(filters=TransactionFilters())
        .prefetch_related("review__events__reviewer")
        .filter(transaction_id=transaction_id)
        .first()
    )


def account_exists(*, account_id: str) -> bool:
    return Transaction.objects.filter(account_id=account_id).exists()


def model_versions_list() -> QuerySet[ModelVersion]:
    """Active versions first, then newest first within each algorithm."""
    return ModelVersion.objects.order_by("-is_active", "algorithm", "-version")


def latest_predictions(transaction: Transaction) -> dict[str, Prediction]:
    """Per algorithm, the active version's prediction, else the newest version's
    (from prefetched rows: no query per transaction)."""
    latest: dict[str, Prediction] = {}
    for prediction in transaction.predictions.all():
        algorithm = prediction.model_version.algorithm
        current = latest.get(algorithm)
        if current is None or (
            prediction.model_version.is_active and not current.model_version.is_active
        ):
            latest[algorithm] = prediction
    return latest
