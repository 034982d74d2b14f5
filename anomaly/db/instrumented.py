"""The cursor class that counts and times statements for Prometheus."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from django_prometheus.db import (
    errors_total,
    execute_many_total,
    execute_total,
    query_duration_seconds,
)


@cache
def instrumented_cursor(cursor_class: type, alias: str, vendor: str) -> type:
    """``cursor_class`` counting its statements, their durations and errors
    under the labels (alias, vendor); one class per combination."""
    executed = execute_total.labels(alias, vendor)
    executed_in_bulk = execute_many_total.labels(alias, vendor)
    duration = query_duration_seconds.labels(alias, vendor)

    def failed(error: Exception) -> None:
        errors_total.labels(alias, vendor, type(error).__name__).inc()

    # The timing is written out in both methods rather than shared through a
    # context manager, which would cost a generator per statement.
    class InstrumentedCursor(cursor_class):  # type: ignore[misc, valid-type]
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            executed.inc()
            started = time.perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except Exception as error:
                failed(error)
                raise
            finally:
                duration.observe(time.perf_counter() - started)

        def executemany(self, query: Any, param_list: Any, *args: Any, **kwargs: Any) -> Any:
            executed.inc(len(param_list))
            executed_in_bulk.inc(len(param_list))
            started = time.perf_counter()
            try:
                return super().executemany(query, param_list, *args, **kwargs)
            except Exception as error:
                failed(error)
                raise
            finally:
                duration.observe(time.perf_counter() - started)

    InstrumentedCursor.__name__ = InstrumentedCursor.__qualname__ = (
        f"Instrumented{cursor_class.__name__}"
    )
    return InstrumentedCursor
