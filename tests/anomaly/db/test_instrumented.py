"""The database backends count and time every statement for Prometheus, on
the test database (SQLite or, in CI, PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection
from prometheus_client import REGISTRY

pytestmark = pytest.mark.django_db


def _sample(name: str, **labels: str) -> float:
    labels = {"alias": "default", "vendor": connection.vendor, **labels}
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_it_counts_and_times_each_statement():
    executed = _sample("django_db_execute_total")
    timed = _sample("django_db_query_duration_seconds_count")

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute("SELECT 2")

    assert _sample("django_db_execute_total") == executed + 2
    assert _sample("django_db_query_duration_seconds_count") == timed + 2


def test_it_counts_each_row_of_a_bulk_statement():
    executed = _sample("django_db_execute_total")
    in_bulk = _sample("django_db_execute_many_total")

    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE bulk_probe (n integer)")
        cursor.executemany("INSERT INTO bulk_probe (n) VALUES (%s)", [(1,), (2,), (3,)])

    assert _sample("django_db_execute_total") == executed + 1 + 3
    assert _sample("django_db_execute_many_total") == in_bulk + 3


def _errors() -> dict[str, float]:
    """django_db_errors_total of this database, by error type."""
    return {
        sample.labels["type"]: sample.value
        for metric in REGISTRY.collect()
        if metric.name == "django_db_errors"
        for sample in metric.samples
        if sample.name == "django_db_errors_total"
        and sample.labels["alias"] == "default"
        and sample.labels["vendor"] == connection.vendor
    }


def test_it_counts_a_failed_statement_by_its_error_and_still_times_it():
    errors = _errors()
    timed = _sample("django_db_query_duration_seconds_count")

    with connection.cursor() as cursor, pytest.raises(DatabaseError) as raised:
        cursor.execute("SELECT * FROM no_such_table")

    # Counted under the driver's own error, the one Django wraps.
    error = type(raised.value.__cause__).__name__
    assert _errors() == errors | {error: errors.get(error, 0.0) + 1}
    assert _sample("django_db_query_duration_seconds_count") == timed + 1


def test_its_cursors_share_one_class_per_connection():
    # A class built per cursor cost more than the statements of a request.
    with connection.cursor() as first, connection.cursor() as second:
        assert type(first.cursor) is type(second.cursor)
        assert type(first.cursor).__name__.startswith("Instrumented")
