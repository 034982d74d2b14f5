"""Django's SQLite backend with django-prometheus' connection and query
metrics (``anomaly.db``), converting each statement's placeholders once, and
leaving the log's checkpoints to a thread where one runs (``checkpoint``),
which each commit wakes."""

from __future__ import annotations

from typing import Any

from django.db.backends.sqlite3.base import SQLiteCursorWrapper
from django_prometheus.db.backends.sqlite3 import base as instrumented_base

from anomaly.db.instrumented import instrumented_cursor
from anomaly.db.sqlite3 import checkpoint

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

    def create_cursor(self, name: str | None = None) -> Any:
        return self.connection.cursor(
            factory=instrumented_cursor(CursorWrapper, self.alias, self.vendor)
        )
