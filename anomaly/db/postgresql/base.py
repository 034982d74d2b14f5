"""Django's PostgreSQL backend with django-prometheus' connection and query
metrics (``anomaly.db``)."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base
from django_prometheus.db.common import DatabaseWrapperMixin

from anomaly.db.instrumented import instrumented_cursor


class DatabaseWrapper(DatabaseWrapperMixin, base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        params["cursor_factory"] = instrumented_cursor(
            params["cursor_factory"], self.alias, self.vendor
        )
        return params

    def create_cursor(self, name: str | None = None) -> Any:
        # psycopg creates the instrumented cursors (cursor_factory above); the
        # mixin's own create_cursor is SQLite's way.
        return base.DatabaseWrapper.create_cursor(self, name=name)
