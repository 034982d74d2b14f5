"""SQLite's write-ahead log copied back to the database file by a thread of
each server worker, instead of by whichever request's commit fills it.

In WAL mode a commit appends its pages to the log. By default the commit
that takes the log past 1,000 pages (4 MB) also checkpoints it, copying the
log into the database file, and that commit's request waits: 11-18 ms in
every third batch of 1,000 transactions. While a worker's thread checkpoints
every ``SQLITE_CHECKPOINT_SECONDS`` instead, in PASSIVE mode (it never waits
for readers or writers, and they never wait for it), that worker's own
connections checkpoint only past ``AUTOCHECKPOINT_PAGES``: a safety net
should the thread fall behind.

A commit in the worker has its thread checkpoint at once too (at most every
``MIN_GAP_SECONDS``): the log is then copied back before the next write
begins, which restarts it from the top, writing over pages the file already
has. Left to the timer, the log grew by a few MB at every batch for several
batches, and a commit that grows the file took 5.5-7.5 ms against 1.5-2.4
for one that writes over it (a batch of 1,000 transactions, about 1.6 MB
of log).

Each worker runs its own thread, started before it opens a connection
(``anomaly/gunicorn_conf.py``). The master forks workers, so it must hold no
SQLite connection or lock: a thread of its own could be inside SQLite at the
moment of a fork and leave the child a lock nobody releases.
"""

from __future__ import annotations

import sqlite3
import threading

import structlog
from django.conf import settings
from django.db import connections

log = structlog.get_logger("anomaly.sqlite")

# 40 MB of log: a checkpoint in a request only if the thread stops keeping up.
AUTOCHECKPOINT_PAGES = 10_000
# The least time between two checkpoints, however often commits come: each
# completed one syncs the database file, and 8 clients commit hundreds of
# single transactions a second. Batches of 1,000 (one commit every 70 ms or
# so) still find the log copied back before most of their writes.
MIN_GAP_SECONDS = 0.1


class WalCheckpointer:
    """A daemon thread that checkpoints one database file's log every
    ``interval`` seconds, and soon after each ``due``, on a connection of its
    own, until stopped."""

    def __init__(self, path: str, interval: float) -> None:
        self.path = path
        self.interval = interval
        self._stopping = threading.Event()
        self._due = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def due(self) -> None:
        """Checkpoint now rather than when the interval ends: the log has grown."""
        self._due.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._due.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            # The requests' own checkpoints carry on (autocheckpoint_pages).
            log.warning("sqlite.checkpoint_failed", path=self.path, error=str(exc))
            return
        try:
            while True:
                self._due.wait(self.interval)
                if self._stopping.is_set():
                    break
                self._due.clear()
                try:
                    # A read first: a connection opened before the file turned
                    # to WAL mode learns it there, else the checkpoint is a no-op.
                    connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    # A locked schema or a moved file: the next turn tries again,
                    # and the requests' own checkpoints stay as the safety net.
                    log.warning("sqlite.checkpoint_failed", path=self.path, error=str(exc))
                if self._stopping.wait(MIN_GAP_SECONDS):
                    break
        finally:
            connection.close()


_running: WalCheckpointer | None = None


def start_background_checkpoints() -> WalCheckpointer | None:
    """In a server worker, before it opens a connection: checkpoint the
    default database's log from a thread, when it is an SQLite file and
    ``SQLITE_CHECKPOINT_SECONDS`` is not 0. The thread, or None."""
    global _running
    database = settings.DATABASES["default"]
    name = str(database.get("NAME") or "")
    interval = settings.SQLITE_CHECKPOINT_SECONDS
    if (
        _running is not None
        or interval <= 0
        or connections["default"].vendor != "sqlite"
        or not name
        or name == ":memory:"
        or name.startswith("file:")
    ):
        return _running
    _running = WalCheckpointer(name, interval)
    _running.start()
    return _running


def stop_background_checkpoints() -> None:
    """Stop this process' checkpointing thread, if it runs."""
    global _running
    if _running is not None:
        _running.stop()
        _running = None


def checkpoint_soon() -> None:
    """A connection of this process committed: have the thread, if one runs,
    copy the log back before the next write."""
    if _running is not None:
        _running.due()


def autocheckpoint_pages() -> int | None:
    """The log size at which this process' new connections checkpoint
    themselves: raised while a thread checkpoints, else SQLite's own (None)."""
    return AUTOCHECKPOINT_PAGES if _running is not None and _running.alive else None
