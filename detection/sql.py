"""Pieces of hand-written SQL for the queries every scoring request runs.

The ORM compiles a query anew on every call: about a millisecond each, most
of an online request's database time. The hot queries are written once per
database instead, with the whole list of ids bound as one parameter, so the
statement text never changes (SQLite reuses its prepared statement) and
nothing is compiled per request. SQLite and PostgreSQL are the databases the
product supports; their spellings differ only in the fragments below.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache, wraps
from typing import Any

from django.db import connection


def vendor() -> str:
    return connection.vendor


def statement(build: Callable[..., str]) -> Callable[..., str]:
    """Build a statement's text once per kind of database (and arguments),
    not on every request."""
    built = cache(lambda database, *args, **kwargs: build(*args, **kwargs))

    @wraps(build)
    def text(*args: Any, **kwargs: Any) -> str:
        return built(vendor(), *args, **kwargs)

    return text


def quote(*names: str) -> str:
    """Quoted, dot-joined identifiers: ``quote("t", "c")`` → ``"t"."c"``."""
    return ".".join(connection.ops.quote_name(name) for name in names)


def in_list(column: str) -> str:
    """``column`` is one of the values bound by ``list_param``."""
    if vendor() == "postgresql":
        return f"{column} = ANY(%s)"
    return f"{column} IN (SELECT value FROM json_each(%s))"


def not_in_list(column: str) -> str:
    if vendor() == "postgresql":
        return f"NOT ({column} = ANY(%s))"
    return f"{column} NOT IN (SELECT value FROM json_each(%s))"


def list_param(values: Iterable[Any]) -> Any:
    """A list of strings or numbers as the one parameter ``in_list`` binds."""
    items = [value.item() if hasattr(value, "item") else value for value in values]
    if vendor() == "postgresql":
        return items
    return json.dumps(items)


def epoch_seconds(column: str, *, database: str | None = None) -> str:
    """A datetime column as integer seconds since 1970, rounded down as
    Python's ``int(datetime.timestamp())`` does for incoming transactions."""
    if (database or vendor()) == "postgresql":
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"
    # unixepoch() rather than strftime('%s'): the driver wrapper would take
    # the literal %s for a placeholder.
    return f"unixepoch({column})"


def as_float(column: str, *, database: str | None = None) -> str:
    kind = "double precision" if (database or vendor()) == "postgresql" else "REAL"
    return f"CAST({column} AS {kind})"


def datetime_param(value: datetime) -> Any:
    """A datetime as the column it is compared with stores it."""
    return connection.ops.adapt_datetimefield_value(value)


def fetch(sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()
