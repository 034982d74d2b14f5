"""Writing transactions: one bulk insert path for the API, the pages and CSV import."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from itertools import chain, repeat
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from detection.models import Prediction, Transaction
from detection.schema import FIELDS, TransactionIn

# The schema's fields in its order (the row tuples below follow it), then the
# one column the store adds.
TRANSACTION_COLUMNS = (*FIELDS, "received_at")
# What scoring adds to a row it stores (transactions_insert's ``scored``).
SCORED_COLUMNS = ("merchant_novelty", "flagged")
# Bound parameters per multi-row INSERT on SQLite, which allows 32,766 a
# statement (PostgreSQL takes a batch as one array per column).
_PARAMETERS_PER_STATEMENT = 32_000
# From this many rows on, SQLite inserts them as the bulk path does; fewer go
# in one statement, which costs a single transaction 3 statements less.
_SQLITE_BULK_FROM = 32
# Page cache while a bulk import runs: big enough to hold the index pages one
# chunk touches, so they are written once per commit instead of being spilled
# and re-read; the connection's own setting is restored afterwards.
_BULK_CACHE_KIB = 256 * 1024


def transactions_insert(
    *,
    items: Sequence[TransactionIn],
    scored: Sequence[tuple[float, bool | None]] | None = None,
) -> dict[str, int]:
    """Insert the transactions whose id is not stored yet; with ``scored``
    (aligned with ``items``), each with its merchant novelty and verdict.

    Returns ``{transaction_id: primary key}`` of the rows this call inserted.
    ``ON CONFLICT DO NOTHING`` makes concurrent inserts of the same id safe: the
    loser simply gets no row back and treats the id as already stored.
    """
    if not items:
        return {}
    ops = connection.ops
    vendor = connection.vendor
    now = transaction_received_at(vendor=vendor)
    table = ops.quote_name(Transaction._meta.db_table)
    rows = transaction_rows(items, vendor=vendor, received_at=now, extra=scored)
    columns = TRANSACTION_COLUMNS if scored is None else (*TRANSACTION_COLUMNS, *SCORED_COLUMNS)
    if vendor == "sqlite" and len(rows) >= _SQLITE_BULK_FROM:
        # The bulk path's one-row statement, run for every row, takes half the
        # time of a multi-row INSERT ... RETURNING here (17 against 31 ms for
        # 1,000 rows). The transaction holds SQLite's only write lock, and a
        # new row's key is above every key before it: the rows above the
        # highest key before are exactly the ones inserted.
        pk = ops.quote_name("id")
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            cursor.execute(f"SELECT COALESCE(MAX({pk}), 0) FROM {table}")
            (highest,) = cursor.fetchone()
            if _insert_each(rows, columns) == len(rows):
                # No id was stored before: each row took the next key in
                # turn, the last one being the connection's last insert.
                # Reading 1,000 keys back cost 0.7 ms.
                cursor.execute("SELECT last_insert_rowid()")
                (last,) = cursor.fetchone()
                first = last - len(rows) + 1
                return {row[0]: first + i for i, row in enumerate(rows)}
            cursor.execute(
                f"SELECT {pk}, {ops.quote_name('transaction_id')} FROM {table} WHERE {pk} > %s",
                [highest],
            )
            return {tx_id: pk for pk, tx_id in cursor.fetchall()}
    column_sql = ", ".join(ops.quote_name(column) for column in columns)
    inserted: dict[str, int] = {}
    with connection.cursor() as cursor:
        for source, params in _row_sources(
            Transaction, columns, rows, _PARAMETERS_PER_STATEMENT // len(columns)
        ):
            cursor.execute(
                f"INSERT INTO {table} ({column_sql}) {source} "
                "ON CONFLICT (transaction_id) DO NOTHING RETURNING id, transaction_id",
                params,
            )
            inserted.update((tx_id, pk) for pk, tx_id in cursor.fetchall())
    return inserted


def transactions_insert_values(*, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert rows made by ``transaction_rows``, skipping ids already stored;
    return how many were new.

    The bulk path of CSV import: one prepared single-row statement run for
    every row. Unlike a multi-row statement inside a transaction, it needs no
    statement journal on SQLite, which halves the pages written per row. Run it
    inside ``transaction.atomic()`` so a chunk commits once.
    """
    if not rows:
        return 0
    return _insert_each(rows, TRANSACTION_COLUMNS)


def _insert_each(rows: Sequence[tuple[Any, ...]], columns: Sequence[str]) -> int:
    ops = connection.ops
    table = ops.quote_name(Transaction._meta.db_table)
    column_sql = ", ".join(ops.quote_name(column) for column in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({column_sql}) VALUES ({placeholders}) "
            "ON CONFLICT (transaction_id) DO NOTHING",
            rows,
        )
        # Both drivers sum the rows each execution changed; a skipped id adds 0.
        return cursor.rowcount


@contextmanager
def transactions_bulk_session() -> Iterator[None]:
    """Tune the connection for a long run of bulk inserts, then put it back."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA cache_size = {-_BULK_CACHE_KIB:d}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous):d}")


def transaction_received_at(*, vendor: str) -> Any:
    """Now, as ``transaction_rows`` wants ``received_at``."""
    now = timezone.now()
    return _sqlite_datetime(now) if vendor == "sqlite" else now


def _sqlite_datetime(value: datetime | None) -> str | None:
    # The schema already made every datetime UTC, which is what Django's SQLite
    # adapter would convert to; doing it directly halves the cost per row, and
    # cutting the offset off the text rather than the zone off the value saves
    # a third more (a new datetime per value).
    return None if value is None else value.isoformat(" ").removesuffix("+00:00")


def _same(value: Any) -> Any:
    return value


def transaction_rows(
    items: Iterable[TransactionIn],
    *,
    vendor: str,
    received_at: Any,
    extra: Iterable[tuple[Any, ...]] | None = None,
) -> list[tuple[Any, ...]]:
    """The rows of ``TRANSACTION_COLUMNS`` for these transactions, then each
    one's ``extra`` values, as the database driver of ``vendor`` takes them.
    It needs no connection, so CSV import builds rows in worker processes."""
    # On SQLite, text, as Django's SQLite adapters would make it at bind time.
    money, when = (str, _sqlite_datetime) if vendor == "sqlite" else (_same, _same)
    pairs = zip(items, repeat(())) if extra is None else zip(items, extra, strict=True)
    # One pass, and the choices' _value_ rather than the slower .value
    # property: 2.5 against 2.9 ms for a batch of 1,000 on SQLite.
    return [
        (
            item.transaction_id,
            item.account_id,
            money(item.amount),
            when(item.timestamp),
            item.transaction_type._value_,
            item.location,
            item.device_id,
            item.ip_address,
            item.merchant_id,
            item.channel._value_,
            item.customer_age,
            item.customer_occupation._value_,
            item.duration_seconds,
            item.login_attempts,
            money(item.account_balance),
            when(item.previous_transaction_at),
            received_at,
            *more,
        )
        for item, more in pairs
    ]


# Rows per statement when writing predictions and verdicts. One statement per
# row released and re-took the GIL at every row: beside a thread that runs
# Python (the batch's scorer, a gunicorn worker's other requests) each row
# then waited for its turn, up to milliseconds. A few hundred rows a statement
# also cost less on their own (SQLite: 7-8 µs a row instead of 8-20).
_WRITE_ROWS = 500


def _row_sources(
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    per_statement: int = _WRITE_ROWS,
) -> Iterator[tuple[str, list[Any]]]:
    """The rows as what an INSERT takes after its column list, with their
    parameters: on SQLite ``VALUES (%s, …), (%s, …)`` of at most
    ``per_statement`` rows each; on PostgreSQL all of them as one
    ``SELECT * FROM unnest(%s::type[], …)``, an array per column. Django binds
    parameters on the client, and PostgreSQL parsed and planned a 1,000-row
    VALUES list anew for every request: 106-262 ms against 51-68 ms for the
    arrays (1,000 transactions)."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        types = _column_types(model, tuple(columns))
        arrays = ", ".join(f"%s::{kind}[]" for kind in types)
        by_column = [list(column) for column in zip(*rows, strict=True)]
        yield f"SELECT * FROM unnest({arrays})", by_column
        return
    for start in range(0, len(rows), per_statement):
        group = rows[start : start + per_statement]
        row = "(" + ", ".join(["%s"] * len(group[0])) + ")"
        yield "VALUES " + ", ".join([row] * len(group)), list(chain.from_iterable(group))


@cache
def _column_types(model: type[Model], columns: tuple[str, ...]) -> tuple[str, ...]:
    by_column = {field.column: field for field in model._meta.concrete_fields}
    return tuple(by_column[column].db_type(connection) for column in columns)


def predictions_upsert(*, rows: Sequence[tuple[int, int, float, float, bool, str]]) -> None:
    """Store (transaction pk, model version pk, score, threshold, is_anomaly,
    reasons JSON) rows; scoring a pair again replaces its earlier result."""
    if not rows:
        return
    ops = connection.ops
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
    scored_at = (ops.adapt_datetimefield_value(timezone.now()),)
    with connection.cursor() as cursor:
        for source, params in _row_sources(Prediction, columns, [row + scored_at for row in rows]):
            cursor.execute(
                f"INSERT INTO {table} ({column_sql}) {source} "
                f"ON CONFLICT (transaction_id, model_version_id) DO UPDATE SET {updates}",
                params,
            )


def transactions_mark(*, rows: Sequence[tuple[int, float]], flagged: Sequence[bool] | None) -> None:
    """Record on each transaction (pk, merchant_novelty) its novelty and, when
    every algorithm was scored, the verdict."""
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(Transaction._meta.db_table)
    if flagged is None:
        columns: tuple[str, ...] = ("id", "merchant_novelty")
        values = [(pk, float(novelty)) for pk, novelty in rows]
    else:
        columns = ("id", "merchant_novelty", "flagged")
        values = [
            (pk, float(novelty), bool(verdict))
            for (pk, novelty), verdict in zip(rows, flagged, strict=True)
        ]
    # The row source's columns as column1, column2, …: what SQLite calls a
    # VALUES list's columns, and PostgreSQL's unnest gets as aliases.
    names = [f"column{i}" for i in range(1, len(columns) + 1)]
    assignments = ", ".join(
        f"{quote(column)} = v.{name}" for column, name in zip(columns[1:], names[1:], strict=True)
    )
    alias = f"v({', '.join(names)})" if connection.vendor == "postgresql" else "v"
    with connection.cursor() as cursor:
        for source, params in _row_sources(Transaction, columns, values):
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} "
                f"FROM ({source}) AS {alias} WHERE t.{quote('id')} = v.column1",
                params,
            )
