"""A thread checkpoints SQLite's write-ahead log, and connections opened while
it runs leave the checkpoints to it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from anomaly.db.sqlite3.checkpoint import (
    AUTOCHECKPOINT_PAGES,
    WalCheckpointer,
    start_background_checkpoints,
    stop_background_checkpoints,
)
from tests.anomaly.db.wal import file_alone_counts, file_alone_holds, log_rows, wait_until


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    writer = log_rows(tmp_path / "db.sqlite3")
    yield writer
    writer.close()


def test_a_thread_copies_the_log_into_the_database_file(tmp_path, logged):
    database = tmp_path / "db.sqlite3"
    assert not file_alone_holds(database, "probe")
    checkpointer = WalCheckpointer(str(database), interval=0.02)
    checkpointer.start()
    try:
        assert wait_until(lambda: file_alone_holds(database, "probe"))
    finally:
        checkpointer.stop()
    assert not checkpointer.alive


def test_it_checkpoints_when_due_without_waiting_for_the_interval(tmp_path, logged):
    database = tmp_path / "db.sqlite3"
    checkpointer = WalCheckpointer(str(database), interval=3600)
    checkpointer.start()
    try:
        time.sleep(0.1)
        assert not file_alone_holds(database, "probe")
        checkpointer.due()
        assert wait_until(lambda: file_alone_holds(database, "probe"), seconds=2)
    finally:
        checkpointer.stop()
    # Stopping wakes it too: no waiting out the hour.
    assert not checkpointer.alive


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's log")
def test_a_commit_has_the_thread_copy_the_log_back_at_once(settings):
    # The log then starts from its top at the next write, instead of growing.
    settings.SQLITE_CHECKPOINT_SECONDS = 3600
    database = Path(settings.DATABASES["default"]["NAME"])
    checkpointer = start_background_checkpoints()
    try:
        assert checkpointer is not None
        with transaction.atomic():
            get_user_model().objects.create(username="committed-probe")
        assert wait_until(
            lambda: (
                file_alone_counts(
                    database, "SELECT count(*) FROM auth_user WHERE username = 'committed-probe'"
                )
                == 1
            ),
            seconds=2,
        )
    finally:
        stop_background_checkpoints()


def test_it_follows_a_file_that_turned_to_wal_after_it_connected(tmp_path):
    # A worker's thread connects before the worker's first connection sets
    # WAL mode on a new database file.
    database = tmp_path / "db.sqlite3"
    checkpointer = WalCheckpointer(str(database), interval=0.02)
    checkpointer.start()
    try:
        assert wait_until(database.exists)
        time.sleep(0.1)
        writer = log_rows(database)
        try:
            assert wait_until(lambda: file_alone_holds(database, "probe"))
        finally:
            writer.close()
    finally:
        checkpointer.stop()


def test_it_carries_on_after_a_turn_that_fails(tmp_path):
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"not a database" * 100)
    checkpointer = WalCheckpointer(str(broken), interval=0.02)
    with structlog.testing.capture_logs() as logs:
        checkpointer.start()
        try:
            assert wait_until(lambda: len(logs) >= 2)
            assert checkpointer.alive
        finally:
            checkpointer.stop()
    assert logs[0]["event"] == "sqlite.checkpoint_failed"
    assert logs[0]["log_level"] == "warning"


def autocheckpoint_of_a_new_connection() -> int:
    fresh = connections.create_connection("default")
    try:
        with fresh.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint")
            return cursor.fetchone()[0]
    finally:
        fresh.close()


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's log")
def test_connections_leave_checkpoints_to_the_thread_while_it_runs(settings):
    settings.SQLITE_CHECKPOINT_SECONDS = 0.05
    assert autocheckpoint_of_a_new_connection() == 1000  # SQLite's own
    checkpointer = start_background_checkpoints()
    try:
        assert checkpointer is not None and checkpointer.alive
        assert checkpointer.path == settings.DATABASES["default"]["NAME"]
        assert start_background_checkpoints() is checkpointer  # one per process
        assert autocheckpoint_of_a_new_connection() == AUTOCHECKPOINT_PAGES
    finally:
        stop_background_checkpoints()
    assert not checkpointer.alive
    assert autocheckpoint_of_a_new_connection() == 1000


@pytest.mark.django_db
def test_no_thread_runs_when_switched_off_or_off_sqlite(settings):
    settings.SQLITE_CHECKPOINT_SECONDS = 0 if connection.vendor == "sqlite" else 0.05
    assert start_background_checkpoints() is None


def test_it_logs_and_stops_when_it_cannot_open_the_file(tmp_path):
    checkpointer = WalCheckpointer(str(tmp_path / "missing" / "db.sqlite3"), interval=0.02)
    with structlog.testing.capture_logs() as logs:
        checkpointer.start()
        assert wait_until(lambda: not checkpointer.alive)
    assert [entry["event"] for entry in logs] == ["sqlite.checkpoint_failed"]
