"""Django's SQLite backend with django-prometheus' connection and query
metrics (``anomaly.db``), converting each statement's placeholders once,
taking the write lock as soon as another process lets go of it, and leaving
the log's checkpoints to a thread where one runs (``checkpoint``), which each
commit wakes."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from django.db.backends.sqlite3.base import SQLiteCursorWrapper
from django_prometheus.db.backends.sqlite3 import base as instrumented_base

from anomaly.db.instrumented import instrumented_cursor
from anomaly.db.sqlite3 import checkpoint

# A writer that finds the write lock taken tries again itself for up to
# _QUICK_WAIT_SECONDS before it leaves the wait to SQLite, whose busy handler
# sleeps 1, 2, 5, 10 … ms between tries: a worker that found the other one
# writing a single transaction (about a millisecond) lost a whole sleep
# beyond it, idle. Under 8 clients one write in ten waited; the time they
# spent waiting halved (680-710 against 370-380 ms per 10 s). It tries every
# 0.1 ms for the first 2 ms, then every millisecond, so that waiting out a
# batch's write (15-20 ms) costs the cores the writer is using a few dozen
# tries, not hundreds.
_QUICK_WAIT_SECONDS = 0.05
_FINE_WAIT_SECONDS = 0.002
_FINE_RETRY_SECONDS = 0.0001
_COARSE_RETRY_SECONDS = 0.001

# Statements seen, in "format" style, and their "qmark" form. Scoring sends
# the same statements with every request, some of them 500-row VALUES lists
# whose conversion by regular expression took 0.4 ms each time.
_QMARK: dict[str, str] = {}
_QMARK_SIZE = 256


class CursorWrapper(SQLiteCursorWrapper):
    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is not None:
            return super().convert_query(query, param_names=param_names)
        converted = _QMARK.get(query)
        if converted is None:
            converted = super().convert_query(query)
            if len(_QMARK) >= _QMARK_SIZE:
                # Plain and bounded: the statements that repeat come back at once.
                _QMARK.clear()
            _QMARK[query] = converted
        return converted


class DatabaseWrapper(instrumented_base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        pages = checkpoint.autocheckpoint_pages()
        if pages is not None:
            connection.execute(f"PRAGMA wal_autocheckpoint = {pages:d}")
        return connection

    def _commit(self) -> None:
        super()._commit()
        checkpoint.checkpoint_soon()

    def _start_transaction_under_autocommit(self) -> None:
        if self.transaction_mode != "IMMEDIATE":
            super()._start_transaction_under_autocommit()
            return
        raw = self.connection
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            started = time.monotonic()
            while True:
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                    waited = time.monotonic() - started
                    if not busy or waited > min(_QUICK_WAIT_SECONDS, timeout):
                        break
                fine = waited < _FINE_WAIT_SECONDS
                time.sleep(_FINE_RETRY_SECONDS if fine else _COARSE_RETRY_SECONDS)
        finally:
            raw.execute(f"PRAGMA busy_timeout = {round(timeout * 1000):d}")
        # Still taken (a long write, such as an import), or another error:
        # Django's own start, which waits on SQLite's terms up to the
        # timeout and raises as Django does.
        super()._start_transaction_under_autocommit()

    def create_cursor(self, name: str | None = None) -> Any:
        return self.connection.cursor(
            factory=instrumented_cursor(CursorWrapper, self.alias, self.vendor)
        )
