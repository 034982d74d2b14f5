"""Django's SQLite backend with django-prometheus' connection and query
metrics (``anomaly.db``)."""

from __future__ import annotations

from typing import Any

from django_prometheus.db.backends.sqlite3 import base as instrumented_base

from anomaly.db.instrumented import instrumented_cursor


class DatabaseWrapper(instrumented_base.DatabaseWrapper):
    def create_cursor(self, name: str | None = None) -> Any:
        return self.connection.cursor(
            factory=instrumented_cursor(self.CURSOR_CLASS, self.alias, self.vendor)
        )
