"""Reading transactions into the columnar frame the feature code works on."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connections
from django.db.models import F, FloatField, Func, IntegerField, QuerySet

from detection import sql
from detection.features import COLUMNS, FEATURE_INPUTS, Columns
from detection.models import Transaction
from detection.schema import TransactionIn


class _Spelled(Func):
    """An expression spelled by ``detection.sql``, so the reads the ORM builds
    and the hand-written ones compute it alike."""

    spelling: Callable[..., str]

    def as_sql(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        template = self.spelling("%(expressions)s", database=connection.vendor)
        return super().as_sql(compiler, connection, template=template, **extra_context)


class EpochSeconds(_Spelled):
    """A datetime column as integer seconds since 1970, computed by the database
    so a million rows don't become a million Python datetimes."""

    output_field = IntegerField()
    spelling = staticmethod(sql.epoch_seconds)


class AsFloat(_Spelled):
    """A decimal column as a double: the features compute in floats."""

    output_field = FloatField()
    spelling = staticmethod(sql.as_float)


_ANNOTATIONS = {
    "ts": EpochSeconds(F("timestamp")),
    "amount_f": AsFloat(F("amount")),
    "balance_f": AsFloat(F("account_balance")),
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


# The features never read these: reads that only feed the features (history,
# training, batch scoring) fill them with blanks instead of fetching them, so
# a large read builds a fifth fewer Python objects (the unique ids above all).
_NOT_FEATURE_INPUTS = {
    name: 0 if name in _DTYPES else "" for name in COLUMNS if name not in FEATURE_INPUTS
}
_FEATURE_INPUT_COLUMNS = tuple(name for name in _FRAME_COLUMNS if name not in _NOT_FEATURE_INPUTS)


def _columns(rows: list[tuple], names: tuple[str, ...] = _FRAME_COLUMNS) -> Columns:
    if not rows:
        return {name: np.array([], dtype=_DTYPES.get(name, object)) for name in names}
    return {
        name: np.array(values, dtype=_DTYPES.get(name, object))
        for name, values in zip(names, zip(*rows, strict=True), strict=True)
    }


def _feature_input_columns(rows: list[tuple]) -> Columns:
    columns = _columns(rows, _FEATURE_INPUT_COLUMNS)
    for name, blank in _NOT_FEATURE_INPUTS.items():
        columns[name] = np.full(len(rows), blank, dtype=_DTYPES.get(name, object))
    return {name: columns[name] for name in _FRAME_COLUMNS}


def _selected(names: tuple[str, ...]) -> tuple[str, ...]:
    """The ``_VALUES`` that give these frame columns."""
    return tuple(
        value for value, name in zip(_VALUES, _FRAME_COLUMNS, strict=True) if name in names
    )


def frame_from_queryset(queryset: QuerySet[Transaction], *, features_only: bool = False) -> Columns:
    """Stored transactions as ``COLUMNS`` plus their primary key ``pk``; with
    ``features_only``, the columns the features don't read are blanks.

    The ORM builds the query; the rows are fetched straight from the cursor.
    Every selected value is already a plain int, float or str, so Django's
    per-row converters would only cost time (most of it, for large reads).
    """
    names = _FEATURE_INPUT_COLUMNS if features_only else _FRAME_COLUMNS
    values = queryset.annotate(**_ANNOTATIONS).values_list(*_selected(names)).order_by()
    sql_text, params = values.query.sql_with_params()
    with connections[values.db].cursor() as cursor:
        cursor.execute(sql_text, params)
        rows = cursor.fetchall()
    return _feature_input_columns(rows) if features_only else _columns(rows)


def frame_from_items(items: Sequence[TransactionIn]) -> Columns:
    """Incoming (validated) transactions; ``pk`` is unknown (-1)."""
    records = [
        (
            -1,
            item.transaction_id,
            item.account_id,
            int(item.timestamp.timestamp()),
            float(item.amount),
            item.transaction_type._value_,
            item.location,
            item.device_id,
            item.ip_address,
            item.merchant_id,
            item.channel._value_,
            item.customer_age,
            item.duration_seconds,
            item.login_attempts,
            float(item.account_balance),
        )
        for item in items
    ]
    return _columns(records)


@sql.statement
def _select_sql(features_only: bool = False) -> str:
    """``_VALUES`` (those the features read, with ``features_only``) as a
    hand-written select list of the transaction table."""
    expressions = {
        "ts": sql.epoch_seconds(sql.quote("timestamp")),
        "amount_f": sql.as_float(sql.quote("amount")),
        "balance_f": sql.as_float(sql.quote("account_balance")),
    }
    names = _FEATURE_INPUT_COLUMNS if features_only else _FRAME_COLUMNS
    columns = ", ".join(expressions.get(value) or sql.quote(value) for value in _selected(names))
    return f"SELECT {columns} FROM {sql.quote(Transaction._meta.db_table)}"


@sql.statement
def _stored_sql() -> str:
    return f"{_select_sql()} WHERE {sql.in_list(sql.quote('transaction_id'))}"


@sql.statement
def _history_sql(excluding: bool) -> str:
    timestamp = sql.quote("timestamp")
    where = [sql.in_list(sql.quote("account_id")), f"{timestamp} >= %s", f"{timestamp} < %s"]
    if excluding:
        where.append(sql.not_in_list(sql.quote("transaction_id")))
    return f"{_select_sql(features_only=True)} WHERE {' AND '.join(where)}"


@sql.statement
def _merchant_recent_sql() -> str:
    timestamp = sql.quote("timestamp")
    novelty = sql.quote("merchant_novelty")
    # Only rows with novelty: the others add 0 to every window sum of
    # merchant_burst, so leaving them out changes no feature, not even in the
    # last bit. The literal (not a parameter) spells the condition of the
    # partial index tx_merchant_novel, so both databases can use it.
    return (
        f"SELECT {sql.quote('merchant_id')}, {sql.epoch_seconds(timestamp)}, {novelty} "
        f"FROM {sql.quote(Transaction._meta.db_table)} "
        f"WHERE {sql.in_list(sql.quote('merchant_id'))} "
        f"AND {timestamp} >= %s AND {timestamp} < %s AND {novelty} > 0.0 "
        f"AND {sql.not_in_list(sql.quote('account_id'))}"
    )


@sql.statement
def _latest_pk_sql() -> str:
    return f"SELECT MAX({sql.quote('id')}) FROM {sql.quote(Transaction._meta.db_table)}"


@sql.statement
def _after_pk_sql() -> str:
    pk = sql.quote("id")
    return f"{_select_sql(features_only=True)} WHERE {pk} > %s AND {pk} <= %s"


def _window_sql(aggregates: str, *, per_account: bool) -> str:
    """``aggregates`` over the rows of a list of accounts in a time window,
    per account or over all of them. Answered from the (account_id,
    timestamp) index alone: both databases keep the row's id beside each
    index entry."""
    timestamp, account = sql.quote("timestamp"), sql.quote("account_id")
    return (
        f"SELECT {f'{account}, ' if per_account else ''}{aggregates} "
        f"FROM {sql.quote(Transaction._meta.db_table)} "
        f"WHERE {sql.in_list(account)} AND {timestamp} >= %s AND {timestamp} < %s"
        f"{f' GROUP BY {account}' if per_account else ''}"
    )


@sql.statement
def _window_counts_sql() -> str:
    return _window_sql(f"COUNT(*), MAX({sql.quote('id')})", per_account=True)


@sql.statement
def _window_totals_sql() -> str:
    return _window_sql(f"COUNT(*), SUM({sql.quote('id')})", per_account=False)


def _window_params(account_ids: Iterable[str], since: datetime, before: datetime) -> list[Any]:
    return [
        sql.list_param(sorted(set(account_ids))),
        sql.datetime_param(since),
        sql.datetime_param(before),
    ]


def latest_pk() -> int:
    """The highest primary key stored (0 when there is none)."""
    [(latest,)] = sql.fetch(_latest_pk_sql(), [])
    return int(latest or 0)


def transactions_after(*, after_pk: int, upto_pk: int) -> Columns:
    """The stored transactions with after_pk < pk <= upto_pk, as ``account_history``
    gives them (only what the features read)."""
    return _feature_input_columns(sql.fetch(_after_pk_sql(), [after_pk, upto_pk]))


def window_counts(
    *, account_ids: Iterable[str], since: datetime, before: datetime
) -> dict[str, tuple[int, int]]:
    """For each of these accounts with stored transactions in [since, before):
    how many there are and the highest primary key among them."""
    rows = sql.fetch(_window_counts_sql(), _window_params(account_ids, since, before))
    return {account: (int(count), int(highest)) for account, count, highest in rows}


def window_totals(
    *, account_ids: Iterable[str], since: datetime, before: datetime
) -> tuple[int, int]:
    """How many stored transactions these accounts have in [since, before),
    and the sum of their primary keys: ``window_counts`` for all of them at
    once, without grouping (3 ms instead of 5 for a batch of 1,000)."""
    [(count, total)] = sql.fetch(_window_totals_sql(), _window_params(account_ids, since, before))
    return int(count), int(total or 0)


def stored_transactions(*, transaction_ids: Iterable[str]) -> Columns:
    """The stored transactions with these ids (in no particular order)."""
    return _columns(sql.fetch(_stored_sql(), [sql.list_param(transaction_ids)]))


def account_history(
    *,
    account_ids: Iterable[str],
    since: datetime,
    before: datetime,
    exclude_transaction_ids: Iterable[str] = (),
) -> Columns:
    """The stored transactions of these accounts in [since, before): one range
    scan of the (account_id, timestamp) index for the whole batch. Only what
    the features read is filled in (``_NOT_FEATURE_INPUTS``)."""
    params = [
        sql.list_param(sorted(set(account_ids))),
        sql.datetime_param(since),
        sql.datetime_param(before),
    ]
    excluded = list(exclude_transaction_ids)
    if excluded:
        params.append(sql.list_param(excluded))
    return _feature_input_columns(sql.fetch(_history_sql(bool(excluded)), params))


def merchant_recent(
    *,
    merchant_ids: Iterable[str],
    since: datetime,
    before: datetime,
    exclude_account_ids: Iterable[str],
) -> Columns:
    """Other accounts' stored transactions at these merchants in [since, before)
    that carry merchant_novelty: merchant, time and that novelty. Transactions
    never scored, or scored without novelty, are left out."""
    rows = sql.fetch(
        _merchant_recent_sql(),
        [
            sql.list_param(sorted(set(merchant_ids))),
            sql.datetime_param(since),
            sql.datetime_param(before),
            sql.list_param(sorted(set(exclude_account_ids))),
        ],
    )
    return {
        "merchant_id": np.array([r[0] for r in rows], dtype=object),
        "ts": np.array([r[1] for r in rows], dtype=np.int64),
        "novelty": np.array([r[2] for r in rows], dtype=np.float64),
    }
