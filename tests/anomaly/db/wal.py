"""SQLite write-ahead-log helpers for the checkpoint tests."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path


def file_alone_holds(database: Path, table: str) -> bool:
    """Whether the database file, without its log, has ``table``'s rows: what
    only a checkpoint puts there in WAL mode."""
    return file_alone_counts(database, f"SELECT count(*) FROM {table}") > 0


def file_alone_counts(database: Path, query: str) -> int:
    """The count ``query`` gives on the database file without its log; 0
    while the file has not even the table."""
    alone = database.with_name(f"{database.stem}-alone.sqlite3")
    shutil.copyfile(database, alone)
    reader = sqlite3.connect(alone)
    try:
        return reader.execute(query).fetchone()[0]
    except sqlite3.OperationalError:  # not even the table yet
        return 0
    finally:
        reader.close()
        alone.unlink()


def wait_until(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def log_rows(database: Path) -> sqlite3.Connection:
    """Turn ``database`` to WAL mode and leave a table's rows in its log: a
    writer that never checkpoints, to be closed by the caller."""
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE probe (n INTEGER)")
    writer.execute("INSERT INTO probe VALUES (42)")
    return writer
