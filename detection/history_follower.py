"""A thread of each server worker that keeps the worker's copy of the
accounts' history (``detection.history_cache``) current between requests.

Each worker's copy learns another worker's commits when its next request
reads them: a batch of 1,000 transactions stored by the other worker cost
the next large batch here 3-17 ms, whenever two requests in a row went to
different workers, which is which worker gets there first. Every
``ML_HISTORY_FOLLOW_SECONDS`` this thread reads them instead, on a
connection of its own, once there are ``AT_LEAST_ROWS`` of them, while no
request of this worker is running: its own commits are held by the request
that made them, and a running request would wait for the GIL. A request
that comes meanwhile waits for the copy's lock, then finds nothing left to
read.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import connection

from detection.history_cache import HistoryCache, process_cache

log = structlog.get_logger("detection")

# After a failed turn (the database away, say), one warning a second at most.
FAILED_PAUSE_SECONDS = 1.0
# Fewer new rows are left to the next large batch, which reads 100 in 0.3 ms.
# Read as they came, one or two at a time, the commits of 8 clients sending
# single transactions cost 10-15 % of the requests per second (439 and 446
# against 512 and 493).
AT_LEAST_ROWS = 100


class _Requests:
    """How many requests this process is running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0

    def started(self, **_: Any) -> None:
        with self._lock:
            self.running += 1

    def finished(self, **_: Any) -> None:
        with self._lock:
            self.running = max(self.running - 1, 0)


_requests = _Requests()


class HistoryFollower:
    """A daemon thread that has ``cache`` read new commits every ``interval``
    seconds while this process runs no request, until stopped."""

    def __init__(self, cache: HistoryCache, interval: float) -> None:
        self.cache = cache
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-follower", daemon=True)

    def start(self) -> None:
        request_started.connect(_requests.started, dispatch_uid="history-follower-started")
        request_finished.connect(_requests.finished, dispatch_uid="history-follower-finished")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self.interval):
                if _requests.running:
                    continue
                try:
                    self.cache.follow(at_least=AT_LEAST_ROWS)
                except Exception as exc:
                    # The next large batch reads them itself; a broken
                    # connection is opened again at the next turn.
                    log.warning("history.follow_failed", error=str(exc))
                    connection.close()
                    self._stopping.wait(FAILED_PAUSE_SECONDS)
        finally:
            connection.close()


_running: HistoryFollower | None = None


def start_following() -> HistoryFollower | None:
    """In a server worker: follow the commits into this process' copy from a
    thread, unless the copy or ``ML_HISTORY_FOLLOW_SECONDS`` is 0. The
    thread, or None."""
    global _running
    interval = settings.ML_HISTORY_FOLLOW_SECONDS
    if _running is None and interval > 0 and settings.ML_HISTORY_CACHE_ROWS > 0:
        _running = HistoryFollower(process_cache(), interval)
        _running.start()
    return _running


def stop_following() -> None:
    """Stop this process' follower, if it runs."""
    global _running
    if _running is not None:
        _running.stop()
        _running = None
