"""The SQLite backend converts each statement's placeholders once and keeps
what Django's conversion gives, and a writer takes the write lock once
another process lets go of it, however long that takes, up to its timeout."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import OperationalError, connection, connections, transaction

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


@contextmanager
def file_database(path: Path, *, timeout: float) -> Iterator[str]:
    """This backend on a database file, as the server's workers use it: under
    an alias of its own, the test database being in memory."""
    options = {**connection.settings_dict["OPTIONS"], "timeout": timeout}
    wrapper = base.DatabaseWrapper(
        {**connection.settings_dict, "NAME": str(path), "OPTIONS": options}, alias="file"
    )
    connections["file"] = wrapper
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS written (who TEXT)")
        yield "file"
    finally:
        wrapper.close()
        del connections["file"]


@contextmanager
def another_process_writing(path: Path, *, for_seconds: float | None) -> Iterator[None]:
    """Another connection holding the write lock with a row written, which it
    commits after ``for_seconds`` (never, when None)."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO written VALUES ('other')")
    done = threading.Timer(for_seconds or 0, other.execute, ["COMMIT"])
    if for_seconds is not None:
        done.start()
    try:
        yield
    finally:
        done.cancel()
        if for_seconds is not None:
            done.join()
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def written_and_wait(alias: str) -> tuple[list[str], int]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT who FROM written ORDER BY rowid")
        rows = [who for (who,) in cursor.fetchall()]
        cursor.execute("PRAGMA busy_timeout")
        return rows, cursor.fetchone()[0]


@pytest.mark.parametrize(
    "held",
    # Within the quick tries, and beyond them, where SQLite's own wait takes over.
    [0.02, 0.3],
    ids=["a short write", "a long write"],
)
def test_a_writer_writes_once_the_other_process_has_committed(tmp_path, held):
    with file_database(tmp_path / "db.sqlite3", timeout=5) as alias:
        with (
            another_process_writing(tmp_path / "db.sqlite3", for_seconds=held),
            transaction.atomic(using=alias),
            connections[alias].cursor() as cursor,
        ):
            cursor.execute("INSERT INTO written VALUES ('this')")
        # The other write went in first: this one waited for it, and the
        # connection's own wait is as configured again.
        assert written_and_wait(alias) == (["other", "this"], 5000)


def test_a_writer_tries_again_itself_rather_than_sleeping_in_sqlite(tmp_path):
    path = tmp_path / "db.sqlite3"
    with file_database(path, timeout=5) as alias:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        statements: list[str] = []

        def trace(statement: str) -> None:
            statements.append(statement)
            if statements.count("BEGIN IMMEDIATE") == 3:
                other.execute("COMMIT")  # the other process lets go

        connections[alias].ensure_connection()
        connections[alias].connection.set_trace_callback(trace)
        try:
            with transaction.atomic(using=alias):
                pass
        finally:
            connections[alias].connection.set_trace_callback(None)
            other.close()
    # Its own tries, SQLite's wait switched off meanwhile (it would have slept
    # 1 ms, then 2, then 5 … between tries instead), then set back.
    assert statements == [
        "PRAGMA busy_timeout = 0",
        "BEGIN IMMEDIATE",
        "BEGIN IMMEDIATE",
        "BEGIN IMMEDIATE",
        "PRAGMA busy_timeout = 5000",
        "COMMIT",
    ]


def test_a_writer_gives_up_after_its_timeout_as_django_does(tmp_path):
    with file_database(tmp_path / "db.sqlite3", timeout=0.2) as alias:
        with (
            another_process_writing(tmp_path / "db.sqlite3", for_seconds=None),
            pytest.raises(OperationalError, match="locked"),
            transaction.atomic(using=alias),
        ):
            pass
        assert written_and_wait(alias) == ([], 200)
