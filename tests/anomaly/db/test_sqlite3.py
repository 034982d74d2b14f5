"""The SQLite backend converts each statement's placeholders once and keeps
what Django's conversion gives."""

from __future__ import annotations

import pytest
from django.db import connection

from anomaly.db.sqlite3 import base

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend"),
]


def test_it_runs_a_statement_alike_the_first_time_and_from_what_it_remembers():
    query = "SELECT %s || '%%', %s + 1 WHERE 'a%%' LIKE %s"
    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute(query, ["50", 41, "a%"])
            assert cursor.fetchone() == ("50%", 42)
    assert base._QMARK[query] == "SELECT ? || '%', ? + 1 WHERE 'a%' LIKE ?"


def test_it_leaves_named_parameters_to_django():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %(n)s * 2", {"n": 21})
        assert cursor.fetchone() == (42,)


def test_it_holds_a_bounded_number_of_statements():
    with connection.cursor() as cursor:
        for n in range(base._QMARK_SIZE + 10):
            cursor.execute(f"SELECT %s + {n}", [1])
            assert cursor.fetchone() == (n + 1,)
    assert len(base._QMARK) <= base._QMARK_SIZE
