"""Reading transactions into the columnar frame the feature code works on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
from django.db import connections
from django.db.models import F, FloatField, Func, IntegerField, QuerySet
from django.db.models.functions import Cast

from detection.features import COLUMNS, Columns
from detection.models import Transaction
from detection.schema import TransactionIn


class EpochSeconds(Func):
    """A datetime column as integer seconds since 1970, computed by the database
    so a million rows don't become a million Python datetimes."""

    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        return self.as_sql(
            compiler,
            connection,
            # unixepoch() (SQLite 3.38+) rather than strftime('%s'): a literal
            # %s would be taken for a query placeholder by the driver wrapper.
            template="unixepoch(%(expressions)s)",
            **extra_context,
        )

    def as_postgresql(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        return self.as_sql(
            compiler,
            connection,
            template="CAST(EXTRACT(EPOCH FROM %(expressions)s) AS BIGINT)",
            **extra_context,
        )


_ANNOTATIONS = {
    "ts": EpochSeconds(F("timestamp")),
    "amount_f": Cast("amount", FloatField()),
    "balance_f": Cast("account_balance", FloatField()),
}
_VALUES = (
    "id",
    "transaction_id",
    "account_id",
    "ts",
    "amount_f",
    "transaction_type",
    "location",
    "device_id",
    "ip_address",
    "merchant_id",
    "channel",
    "customer_age",
    "duration_seconds",
    "login_attempts",
    "balance_f",
)
_FRAME_COLUMNS = ("pk", *COLUMNS)
_DTYPES = {
    "pk": np.int64,
    "ts": np.int64,
    "amount": np.float64,
    "customer_age": np.int64,
    "duration_seconds": np.int64,
    "login_attempts": np.int64,
    "account_balance": np.float64,
}


def _columns(rows: list[tuple]) -> Columns:
    if not rows:
        return {name: np.array([], dtype=_DTYPES.get(name, object)) for name in _FRAME_COLUMNS}
    return {
        name: np.array(values, dtype=_DTYPES.get(name, object))
        for name, values in zip(_FRAME_COLUMNS, zip(*rows, strict=True), strict=True)
    }


def frame_from_queryset(queryset: QuerySet[Transaction]) -> Columns:
    """Stored transactions as ``COLUMNS`` plus their primary key ``pk``.

    The ORM builds the query; the rows are fetched straight from the cursor.
    Every selected value is already a plain int, float or str, so Django's
    per-row converters would only cost time (most of it, for large reads).
    """
    values = queryset.annotate(**_ANNOTATIONS).values_list(*_VALUES).order_by()
    sql, params = values.query.sql_with_params()
    with connections[values.db].cursor() as cursor:
        cursor.execute(sql, params)
        return _columns(cursor.fetchall())


def frame_from_items(items: Sequence[TransactionIn]) -> Columns:
    """Incoming (validated) transactions; ``pk`` is unknown (-1)."""
    records = [
        (
            -1,
            item.transaction_id,
            item.account_id,
            int(item.timestamp.timestamp()),
            float(item.amount),
            item.transaction_type.value,
            item.location,
            item.device_id,
            item.ip_address,
            item.merchant_id,
            item.channel.value,
            item.customer_age,
            item.duration_seconds,
            item.login_attempts,
            float(item.account_balance),
        )
        for item in items
    ]
    return _columns(records)


def account_history(
    *,
    account_ids: Iterable[str],
    since: datetime,
    before: datetime,
    exclude_transaction_ids: Iterable[str] = (),
) -> Columns:
    """The stored transactions of these accounts in [since, before): one range
    scan of the (account_id, timestamp) index for the whole batch."""
    queryset = Transaction.objects.filter(
        account_id__in=sorted(set(account_ids)), timestamp__gte=since, timestamp__lt=before
    )
    excluded = list(exclude_transaction_ids)
    if excluded:
        queryset = queryset.exclude(transaction_id__in=excluded)
    return frame_from_queryset(queryset)


def merchant_recent(
    *,
    merchant_ids: Iterable[str],
    since: datetime,
    before: datetime,
    exclude_account_ids: Iterable[str],
) -> Columns:
    """Other accounts' stored transactions at these merchants in [since, before):
    merchant, time and stored merchant_novelty (0 where never scored)."""
    rows = list(
        Transaction.objects.filter(
            merchant_id__in=sorted(set(merchant_ids)), timestamp__gte=since, timestamp__lt=before
        )
        .exclude(account_id__in=sorted(set(exclude_account_ids)))
        .annotate(ts=_ANNOTATIONS["ts"])
        .values_list("merchant_id", "ts", "merchant_novelty")
        .order_by()
    )
    return {
        "merchant_id": np.array([r[0] for r in rows], dtype=object),
        "ts": np.array([r[1] for r in rows], dtype=np.int64),
        "novelty": np.array([r[2] or 0.0 for r in rows], dtype=np.float64),
    }
