"""Reads shared by the API, the pages and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import (
    Count,
    F,
    FloatField,
    Max,
    Min,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Floor, Greatest, Least, TruncDate

from detection.models import ModelVersion, Prediction, ReviewStatus, Transaction


@dataclass(frozen=True)
class TransactionFilters:
    account_id: str | None = None
    flagged: bool | None = None
    # a ReviewStatus value, "unreviewed" (no review) or "awaiting" (none or pending)
    review_status: str | None = None
    model_version_id: int | None = None  # only transactions that version called anomalous
    since: datetime | None = None
    until: datetime | None = None


# Orderings a listing may ask for; each ends on the primary key so pages are stable.
TRANSACTION_ORDERINGS: dict[str, tuple[str, ...]] = {
    "newest": ("-timestamp", "-id"),
    "oldest": ("timestamp", "id"),
    "amount_desc": ("-amount", "-id"),
    "amount_asc": ("amount", "id"),
    "account": ("account_id", "-timestamp", "-id"),
}


def transactions_list(
    *, filters: TransactionFilters, ordering: str = "newest"
) -> QuerySet[Transaction]:
    """Transactions (newest first unless another of ``TRANSACTION_ORDERINGS`` is
    asked for) with their review and predictions in a fixed number of queries,
    whatever the page size."""
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
    elif filters.review_status == "awaiting":
        queryset = queryset.filter(Q(review__isnull=True) | Q(review__status=ReviewStatus.PENDING))
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
    return queryset.order_by(*TRANSACTION_ORDERINGS.get(ordering, TRANSACTION_ORDERINGS["newest"]))


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


# --- pages: overview, models, accounts -----------------------------------


@dataclass(frozen=True)
class TransactionCounts:
    total: int
    flagged: int
    awaiting_review: int
    confirmed_fraud: int
    false_positive: int
    flagged_confirmed_fraud: int  # flagged, then confirmed by an analyst
    flagged_false_positive: int

    @property
    def flagged_rate(self) -> float | None:
        return self.flagged / self.total if self.total else None

    @property
    def flag_precision(self) -> float | None:
        """Share of reviewed flagged transactions that were confirmed fraud."""
        reviewed = self.flagged_confirmed_fraud + self.flagged_false_positive
        return self.flagged_confirmed_fraud / reviewed if reviewed else None


def transaction_counts() -> TransactionCounts:
    """Counts over every stored transaction, in one query."""
    flagged = Q(flagged=True)
    confirmed = Q(review__status=ReviewStatus.CONFIRMED_FRAUD)
    false_positive = Q(review__status=ReviewStatus.FALSE_POSITIVE)
    # Aliases are prefixed: an aggregate may not share a name with a field it filters on.
    row = Transaction.objects.aggregate(
        n_total=Count("id"),
        n_flagged=Count("id", filter=flagged),
        n_awaiting_review=Count(
            "id",
            filter=flagged & (Q(review__isnull=True) | Q(review__status=ReviewStatus.PENDING)),
        ),
        n_confirmed_fraud=Count("id", filter=confirmed),
        n_false_positive=Count("id", filter=false_positive),
        n_flagged_confirmed_fraud=Count("id", filter=flagged & confirmed),
        n_flagged_false_positive=Count("id", filter=flagged & false_positive),
    )
    return TransactionCounts(**{name.removeprefix("n_"): value for name, value in row.items()})


@dataclass(frozen=True)
class DayCount:
    day: date
    total: int
    flagged: int

    @property
    def flagged_rate(self) -> float:
        return self.flagged / self.total if self.total else 0.0


def transactions_by_day(*, days: int = 30) -> list[DayCount]:
    """Transactions and flagged ones per day (UTC) for the ``days`` days up to
    the newest transaction's day, every day present, oldest first. Anchored on
    the newest transaction rather than today, so an imported history shows."""
    newest = Transaction.objects.aggregate(newest=Max("timestamp"))["newest"]
    if newest is None:
        return []
    last_day = newest.date()
    first_day = last_day - timedelta(days=days - 1)
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=newest.tzinfo)
    rows = (
        Transaction.objects.filter(timestamp__gte=since)
        .annotate(day=TruncDate("timestamp"))
        .values("day")
        .annotate(total=Count("id"), flagged=Count("id", filter=Q(flagged=True)))
        .order_by("day")
    )
    found = {row["day"]: row for row in rows}
    out = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        row = found.get(day, {"total": 0, "flagged": 0})
        out.append(DayCount(day=day, total=row["total"], flagged=row["flagged"]))
    return out


@dataclass(frozen=True)
class ScoreDistribution:
    model_version: ModelVersion
    counts: list[int]
    edges: list[float]

    @property
    def total(self) -> int:
        return sum(self.counts)


def score_distribution(
    *, model_version: ModelVersion, since: datetime | None = None
) -> ScoreDistribution | None:
    """The stored scores of one version (of transactions from ``since`` on),
    counted in the bins of its training histogram; scores outside the training
    range fall into the first or last bin. One grouped query."""
    histogram = (model_version.metrics or {}).get("score_histogram") or {}
    edges = [float(edge) for edge in histogram.get("edges") or []]
    if len(edges) < 2:
        return None
    bins = len(edges) - 1
    width = (edges[-1] - edges[0]) / bins or 1.0
    bucket = Least(
        Greatest(
            Floor((F("score") - Value(edges[0])) / Value(width)),
            Value(0.0),
            output_field=FloatField(),
        ),
        Value(float(bins - 1)),
        output_field=FloatField(),
    )
    queryset = Prediction.objects.filter(model_version=model_version)
    if since is not None:
        queryset = queryset.filter(transaction__timestamp__gte=since)
    counts = [0] * bins
    for row in queryset.annotate(bucket=bucket).values("bucket").annotate(n=Count("id")).order_by():
        counts[int(row["bucket"])] += row["n"]
    return ScoreDistribution(model_version=model_version, counts=counts, edges=edges)


def transactions_awaiting_review(*, limit: int = 10) -> list[Transaction]:
    """The newest flagged transactions no analyst has decided on yet."""
    filters = TransactionFilters(flagged=True, review_status="awaiting")
    return list(transactions_list(filters=filters)[:limit])


def model_version_get(*, model_version_id: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(pk=model_version_id).first()


def active_model_versions() -> dict[str, ModelVersion]:
    return {mv.algorithm: mv for mv in ModelVersion.objects.filter(is_active=True)}


@dataclass(frozen=True)
class ReviewedPredictions:
    """What analysts said about the transactions one version scored."""

    confirmed_fraud: int = 0  # called anomalous, confirmed fraud
    false_positive: int = 0  # called anomalous, reviewed as not fraud
    missed: int = 0  # not called anomalous, yet confirmed fraud

    @property
    def reviewed_flags(self) -> int:
        return self.confirmed_fraud + self.false_positive

    @property
    def precision(self) -> float | None:
        return self.confirmed_fraud / self.reviewed_flags if self.reviewed_flags else None

    @property
    def recall(self) -> float | None:
        frauds = self.confirmed_fraud + self.missed
        return self.confirmed_fraud / frauds if frauds else None


def model_versions_review_quality(
    *, model_version_ids: list[int] | None = None
) -> dict[int, ReviewedPredictions]:
    """Per model version, its verdicts against analysts' reviews (one query)."""
    confirmed = Q(transaction__review__status=ReviewStatus.CONFIRMED_FRAUD)
    false_positive = Q(transaction__review__status=ReviewStatus.FALSE_POSITIVE)
    queryset = Prediction.objects.filter(confirmed | false_positive)
    if model_version_ids is not None:
        queryset = queryset.filter(model_version_id__in=model_version_ids)
    rows = (
        queryset.values("model_version_id")
        .annotate(
            confirmed_fraud=Count("id", filter=Q(is_anomaly=True) & confirmed),
            false_positive=Count("id", filter=Q(is_anomaly=True) & false_positive),
            missed=Count("id", filter=Q(is_anomaly=False) & confirmed),
        )
        .order_by()
    )
    return {
        row.pop("model_version_id"): ReviewedPredictions(**row)
        for row in (dict(row) for row in rows)
    }


@dataclass(frozen=True)
class PredictionCounts:
    scored: int
    anomalies: int


def model_version_prediction_counts(*, model_version: ModelVersion) -> PredictionCounts:
    row = Prediction.objects.filter(model_version=model_version).aggregate(
        scored=Count("id"), anomalies=Count("id", filter=Q(is_anomaly=True))
    )
    return PredictionCounts(**row)


@dataclass(frozen=True)
class KnownValue:
    value: str
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class AccountProfile:
    account_id: str
    transactions: int
    flagged: int
    first_seen: datetime
    last_seen: datetime
    total_amount: Decimal
    distinct: dict[str, int]  # field → how many different values the account used
    known: dict[str, list[KnownValue]]  # field → its most used values


ACCOUNT_FACTS = ("device_id", "location", "merchant_id", "ip_address")


def account_profile(*, account_id: str, limit: int = 8) -> AccountProfile | None:
    """What the account's stored transactions say about it: totals and the
    devices, locations, merchants and IP addresses it used, most used first.
    None for an account with no transactions. One query per fact."""
    base = Transaction.objects.filter(account_id=account_id)
    summary = base.aggregate(
        transactions=Count("id"),
        n_flagged=Count("id", filter=Q(flagged=True)),
        first_seen=Min("timestamp"),
        last_seen=Max("timestamp"),
        total_amount=Sum("amount"),
        **{f"distinct_{fact}": Count(fact, distinct=True) for fact in ACCOUNT_FACTS},
    )
    if not summary["transactions"]:
        return None
    known = {}
    for fact in ACCOUNT_FACTS:
        rows = (
            base.values(fact)
            .annotate(count=Count("id"), first_seen=Min("timestamp"), last_seen=Max("timestamp"))
            .order_by("-count", "-last_seen", fact)[:limit]
        )
        known[fact] = [
            KnownValue(
                value=row[fact],
                count=row["count"],
                first_seen=row["first_seen"],
                last_seen=row["last_seen"],
            )
            for row in rows
        ]
    return AccountProfile(
        account_id=account_id,
        transactions=summary["transactions"],
        flagged=summary["n_flagged"],
        first_seen=summary["first_seen"],
        last_seen=summary["last_seen"],
        total_amount=summary["total_amount"] or Decimal("0"),
        distinct={fact: summary[f"distinct_{fact}"] for fact in ACCOUNT_FACTS},
        known=known,
    )


@dataclass(frozen=True)
class TimelinePoint:
    transaction_id: str
    timestamp: datetime
    amount: Decimal
    flagged: bool | None


def account_timeline(*, account_id: str, limit: int = 500) -> list[TimelinePoint]:
    """The account's newest ``limit`` transactions as chart points, oldest first."""
    rows = (
        Transaction.objects.filter(account_id=account_id)
        .order_by("-timestamp", "-id")
        .values_list("transaction_id", "timestamp", "amount", "flagged")[:limit]
    )
    return [TimelinePoint(*row) for row in list(rows)[::-1]]


def account_recent_history(*, transaction: Transaction, limit: int = 10) -> list[Transaction]:
    """The account's transactions just before this one, newest first: what its
    features were computed from."""
    return list(
        Transaction.objects.filter(account_id=transaction.account_id)
        .filter(
            Q(timestamp__lt=transaction.timestamp)
            | Q(timestamp=transaction.timestamp, id__lt=transaction.pk)
        )
        .select_related("review")
        .order_by("-timestamp", "-id")[:limit]
    )
