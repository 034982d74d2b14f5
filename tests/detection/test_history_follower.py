"""The thread that reads other workers' commits into a worker's copy of the
history between requests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import numpy as np
import pytest
from django.core.signals import request_finished, request_started
from prometheus_client import REGISTRY

from detection.history import frame_from_items
from detection.history_cache import HistoryCache
from detection.history_follower import (
    AT_LEAST_ROWS,
    HistoryFollower,
    start_following,
    stop_following,
)
from tests.factories import START, habitual_items, item, store

# The copy keeps only what was committed: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNTS = [f"AC{a:05d}" for a in range(6)]
WINDOW = {"since": START, "before": START + timedelta(days=60)}
LATER = "2024-03-20T10:00:00Z"


def read_from_database() -> float:
    return REGISTRY.get_sample_value("anomaly_history_rows_total", {"source": "database"}) or 0.0


def history_rows(cache: HistoryCache) -> int:
    """What a request asking for the accounts' history gets; the copy reads
    what it has not seen yet first."""
    targets = frame_from_items(
        [item(transaction_id=f"ASK{a}", account_id=account) for a, account in enumerate(ACCOUNTS)]
    )
    frame = cache.history(targets=targets, exclude_pks=np.array([], dtype=np.int64), **WINDOW)
    return frame.first_target


def wait_until(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def cache() -> HistoryCache:
    store(habitual_items(accounts=6, per_account=20))
    copy = HistoryCache(max_rows=10_000)
    history_rows(copy)  # in use: it follows from here
    return copy


@pytest.fixture
def follower(cache: HistoryCache) -> Iterator[HistoryFollower]:
    thread = HistoryFollower(cache, interval=0.01)
    thread.start()
    yield thread
    thread.stop()


def later_rows(count: int = AT_LEAST_ROWS) -> list:
    return [
        item(transaction_id=f"LATER{n}", account_id=ACCOUNTS[n % 6], timestamp=LATER)
        for n in range(count)
    ]


def test_it_reads_others_commits_into_the_copy_between_requests(cache, follower):
    before = cache.rows
    store(later_rows())  # another worker's commit, to this copy

    assert wait_until(lambda: cache.rows == before + AT_LEAST_ROWS)
    read = read_from_database()
    # The next request finds them held and reads nothing.
    assert history_rows(cache) == before + AT_LEAST_ROWS
    assert read_from_database() == read


def test_it_leaves_a_few_rows_to_the_next_request(cache, follower):
    before = cache.rows
    store(later_rows(AT_LEAST_ROWS - 1))  # single transactions, say
    time.sleep(0.2)  # twenty turns
    assert cache.rows == before
    read = read_from_database()
    assert history_rows(cache) == before + AT_LEAST_ROWS - 1
    assert read_from_database() - read == AT_LEAST_ROWS - 1


def test_it_leaves_the_copy_alone_while_a_request_runs(cache, follower):
    before = cache.rows
    request_started.send(sender=None)
    try:
        store(later_rows())
        time.sleep(0.2)  # twenty turns
        assert cache.rows == before
    finally:
        request_finished.send(sender=None)
    assert wait_until(lambda: cache.rows == before + AT_LEAST_ROWS)


def test_it_leaves_a_copy_never_used_alone():
    store(habitual_items(accounts=6, per_account=5))
    unused = HistoryCache(max_rows=10_000)
    thread = HistoryFollower(unused, interval=0.01)
    thread.start()
    try:
        time.sleep(0.1)
        assert unused.rows == 0
    finally:
        thread.stop()
    assert not thread.alive


def test_it_runs_only_when_switched_on(settings):
    settings.ML_HISTORY_FOLLOW_SECONDS = 0
    assert start_following() is None
    settings.ML_HISTORY_FOLLOW_SECONDS = 0.01
    settings.ML_HISTORY_CACHE_ROWS = 0
    assert start_following() is None
    settings.ML_HISTORY_CACHE_ROWS = 1_000
    try:
        running = start_following()
        assert running is not None and running.alive
        assert start_following() is running  # one per process
    finally:
        stop_following()
    assert not running.alive
