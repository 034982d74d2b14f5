"""Writing transactions: one bulk insert path for the API, the pages and CSV import."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from detection.models import Prediction, Transaction
from detection.schema import TransactionIn

_COLUMNS = (
    "transaction_id",
    "account_id",
    "amount",
    "timestamp",
    "transaction_type",
    "location",
    "device_id",
    "ip_address",
    "merchant_id",
    "channel",
    "customer_age",
    "customer_occupation",
    "duration_seconds",
    "login_attempts",
    "account_balance",
    "previous_transaction_at",
    "received_at",
)
# SQLite allows 32,766 bound variables per statement; stay well under it.
_ROWS_PER_STATEMENT = 32_000 // len(_COLUMNS)


def transactions_insert(*, items: Sequence[TransactionIn]) -> dict[str, int]:
    """Insert the transactions whose id is not stored yet.

    Returns ``{transaction_id: primary key}`` of the rows this call inserted.
    ``ON CONFLICT DO NOTHING`` makes concurrent inserts of the same id safe: the
    loser simply gets no row back and treats the id as already stored.
    """
    if not items:
        return {}
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    table = connection.ops.quote_name(Transaction._meta.db_table)
    columns = ", ".join(ops.quote_name(column) for column in _COLUMNS)
    inserted: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(items), _ROWS_PER_STATEMENT):
            chunk = items[start : start + _ROWS_PER_STATEMENT]
            params: list[Any] = []
            for item in chunk:
                params.extend(_db_values(item, now))
            placeholders = ", ".join(["(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {placeholders} "
                "ON CONFLICT (transaction_id) DO NOTHING RETURNING id, transaction_id",
                params,
            )
            inserted.update((tx_id, pk) for pk, tx_id in cursor.fetchall())
    return inserted


def _sqlite_datetime(value: datetime | None) -> str | None:
    # The schema already made every datetime UTC, which is what Django's SQLite
    # adapter would convert to; doing it directly halves the cost per row.
    return None if value is None else value.replace(tzinfo=None).isoformat(" ")


def _db_values(item: TransactionIn, received_at: Any) -> tuple[Any, ...]:
    adapt_datetime = (
        _sqlite_datetime
        if connection.vendor == "sqlite"
        else connection.ops.adapt_datetimefield_value
    )
    return (
        item.transaction_id,
        item.account_id,
        item.amount,
        adapt_datetime(item.timestamp),
        item.transaction_type.value,
        item.location,
        item.device_id,
        item.ip_address,
        item.merchant_id,
        item.channel.value,
        item.customer_age,
        item.customer_occupation.value,
        item.duration_seconds,
        item.login_attempts,
        item.account_balance,
        adapt_datetime(item.previous_transaction_at),
        received_at,
    )


def predictions_upsert(*, rows: Sequence[tuple[int, int, float, float, bool, str]]) -> None:
    """Store (transaction pk, model version pk, score, threshold, is_anomaly,
    reasons JSON) rows; scoring a pair again replaces its earlier result."""
    if not rows:
        return
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    table = ops.quote_name(Prediction._meta.db_table)
    columns = (
        "transaction_id",
        "model_version_id",
        "score",
        "threshold",
        "is_anomaly",
        "reasons",
        "scored_at",
    )
    column_sql = ", ".join(ops.quote_name(c) for c in columns)
    updates = ", ".join(f"{ops.quote_name(c)} = EXCLUDED.{ops.quote_name(c)}" for c in columns[2:])
    per_statement = 32_000 // len(columns)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params: list[Any] = []
            for row in chunk:
                params.extend((*row, now))
            placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({column_sql}) VALUES {placeholders} "
                f"ON CONFLICT (transaction_id, model_version_id) DO UPDATE SET {updates}",
                params,
            )


def transactions_mark(*, rows: Sequence[tuple[int, float]], flagged: Sequence[bool] | None) -> None:
    """Record on each transaction (pk, merchant_novelty) its novelty and, when
    every algorithm was scored, the verdict: one UPDATE … FROM (VALUES …) per
    chunk, which SQLite (3.33+) and PostgreSQL both understand."""
    if not rows:
        return
    ops = connection.ops
    table = ops.quote_name(Transaction._meta.db_table)
    width = 3 if flagged is not None else 2
    assignments = "merchant_novelty = v.column2" + (", flagged = v.column3" if width == 3 else "")
    per_statement = 30_000 // width
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params: list[Any] = []
            for offset, (pk, novelty) in enumerate(chunk):
                params.extend((pk, float(novelty)))
                if flagged is not None:
                    params.append(bool(flagged[start + offset]))
            row_sql = "(" + ", ".join(["%s"] * width) + ")"
            # PostgreSQL types untyped VALUES parameters from the first row;
            # casting it makes the column types explicit on both databases.
            first = "(CAST(%s AS BIGINT), CAST(%s AS DOUBLE PRECISION)" + (
                ", CAST(%s AS BOOLEAN))" if width == 3 else ")"
            )
            values = ", ".join([first] + [row_sql] * (len(chunk) - 1))
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v "
                f"WHERE {table}.id = v.column1",
                params,
            )
