from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection, transaction
from prometheus_client import REGISTRY

from detection.features import FEATURE_INPUTS, Columns
from detection.history import account_history, frame_from_items
from detection.history_cache import MIN_ACCOUNTS, FeatureFrame, HistoryCache, recent_history
from detection.models import Transaction
from tests.factories import START, habitual_items, item, store

# The copy keeps only what was committed: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)

SINCE = START
BEFORE = START + timedelta(days=60)
ACCOUNTS = [f"AC{a:05d}" for a in range(6)]


def direct(exclude: tuple[str, ...] = (), **window: datetime) -> Columns:
    return account_history(
        account_ids=ACCOUNTS,
        since=window.get("since", SINCE),
        before=window.get("before", BEFORE),
        exclude_transaction_ids=exclude,
    )


def ask_items(accounts: list[str] = ACCOUNTS) -> list:
    """A transaction of each account, never stored unless a test stores it
    (as a request would): what asks for their history."""
    return [
        item(transaction_id=f"ASK{a}", account_id=account) for a, account in enumerate(accounts)
    ]


TARGETS = frame_from_items(ask_items())


def frame_of(
    cache: HistoryCache, exclude_pks: tuple[int, ...] = (), **window: datetime
) -> FeatureFrame:
    return cache.history(
        targets=TARGETS,
        since=window.get("since", SINCE),
        before=window.get("before", BEFORE),
        exclude_pks=np.array(exclude_pks, dtype=np.int64),
    )


def held(cache: HistoryCache, exclude_pks: tuple[int, ...] = (), **window: datetime) -> Columns:
    return history_of(frame_of(cache, exclude_pks, **window))


def history_of(frame: FeatureFrame) -> Columns:
    """The frame's history, its codes read back as texts."""
    return {name: values[: frame.first_target] for name, values in frame.decoded().items()}


def assert_same(got: Columns, expected: Columns) -> None:
    """The same rows (PostgreSQL reads them in no particular order), in every
    column the features read."""
    assert set(got) == {"pk", *FEATURE_INPUTS}
    assert len(got["pk"]) == len(expected["pk"])
    mine, theirs = np.argsort(got["pk"]), np.argsort(expected["pk"])
    for name in got:
        np.testing.assert_array_equal(got[name][mine], expected[name][theirs], err_msg=name)


def assert_in_index_order(got: Columns) -> None:
    # By account, then time, then key, as SQLite's index scan reads them: the
    # features then add up each window in the same order either way.
    order = np.lexsort((got["pk"], got["ts"], got["account_id"].astype(str)))
    np.testing.assert_array_equal(order, np.arange(len(order)))


@pytest.fixture
def stored() -> dict[str, int]:
    return store(habitual_items(accounts=6, per_account=20))


def test_it_gives_what_the_database_read_gives_row_for_row(stored):
    cache = HistoryCache(max_rows=10_000)
    first = held(cache)
    assert len(first["pk"]) > 0
    assert_same(first, direct())
    again = held(cache)
    assert_same(again, direct())
    assert_in_index_order(again)


def rows_counted(source: str) -> float:
    return REGISTRY.get_sample_value("anomaly_history_rows_total", {"source": source}) or 0.0


def test_it_counts_the_rows_it_reads_and_the_rows_it_already_held(stored):
    cache = HistoryCache(max_rows=10_000)
    database, copy = rows_counted("database"), rows_counted("copy")
    first = len(held(cache)["pk"])
    # The first time everything comes from the database (rows after the
    # window included: the copy holds each account from the window's start).
    assert rows_counted("database") - database >= first
    assert rows_counted("copy") == copy
    database = rows_counted("database")
    store([item(transaction_id="NEW", account_id="AC00001", timestamp="2024-03-20T10:00:00Z")])
    assert len(held(cache)["pk"]) == first + 1
    # Then only the new row is read; the rest was held.
    assert rows_counted("database") - database == 1
    assert rows_counted("copy") - copy == first
    assert REGISTRY.get_sample_value("anomaly_history_copy_rows") == cache.rows


def test_it_sees_rows_committed_since_and_leaves_out_the_excluded(stored):
    cache = HistoryCache(max_rows=10_000)
    held(cache)
    new = store(
        [
            item(transaction_id="NEW1", account_id="AC00001", timestamp="2024-03-20T10:00:00Z"),
            item(transaction_id="NEW2", account_id="AC00002", timestamp="2024-03-21T10:00:00Z"),
            item(transaction_id="LATE", account_id="AC00001", timestamp="2024-06-20T10:00:00Z"),
        ]
    )
    got = held(cache, exclude_pks=(new["NEW2"],))
    assert new["NEW1"] in got["pk"]
    assert new["NEW2"] not in got["pk"] and new["LATE"] not in got["pk"]
    assert_same(got, direct(exclude=("NEW2",)))


def test_it_reads_an_account_again_when_a_row_of_it_was_deleted(stored):
    cache = HistoryCache(max_rows=10_000)
    held(cache)
    gone = Transaction.objects.filter(account_id="AC00003").order_by("timestamp")[5]
    gone.delete()
    got = held(cache)
    assert gone.pk not in got["pk"]
    assert_same(got, direct())


def test_it_finds_a_row_committed_under_a_lower_key_than_it_has_seen(stored):
    # On PostgreSQL a transaction can commit after one holding a higher id:
    # reading "pk > watermark" misses it, the per-account count does not.
    cache = HistoryCache(max_rows=10_000)
    held(cache)
    late = Transaction.objects.filter(account_id="AC00004").order_by("pk")[3]
    row = {field.attname: getattr(late, field.attname) for field in Transaction._meta.fields}
    late.delete()
    assert row["id"] not in held(cache)["pk"]
    store([item(transaction_id="AFTER", account_id="AC00005", timestamp="2024-03-22T10:00:00Z")])
    Transaction.objects.create(**row)  # back under its old, lower key
    got = held(cache)
    assert row["id"] in got["pk"]
    assert_same(got, direct())


def test_on_sqlite_a_thread_with_its_own_connection_reads_the_proof(stored):
    cache = HistoryCache(max_rows=10_000)
    held(cache)
    gone = Transaction.objects.filter(account_id="AC00002").order_by("pk")[2]
    gone.delete()  # committed by this thread's connection: the proof sees it

    got = held(cache)

    assert gone.pk not in got["pk"]
    provers = [t for t in threading.enumerate() if t.name.startswith("history-proof")]
    if connection.vendor == "sqlite":
        assert provers, "the proving query ran on the request's own thread"
    else:
        # A connection that thread opened would stay open for good.
        assert not provers


def test_it_reads_again_for_a_window_reaching_further_back_than_its_copy(stored):
    cache = HistoryCache(max_rows=10_000)
    later = SINCE + timedelta(days=10)
    held(cache, since=later)
    assert_same(held(cache, since=SINCE), direct(since=SINCE))


def test_it_holds_what_its_request_stored_without_reading_it_back(stored):
    cache = HistoryCache(max_rows=10_000)
    frame = frame_of(cache)
    pks = store(ask_items())
    rows = np.arange(len(ACCOUNTS))
    assert cache.hold_stored(frame, rows, np.array([pks[f"ASK{a}"] for a in rows]))
    database = rows_counted("database")
    got = held(cache)
    assert rows_counted("database") == database
    assert set(pks.values()) <= set(got["pk"].tolist())
    assert_same(got, direct())


def test_it_does_not_hold_twice_a_row_another_request_read_meanwhile(stored):
    cache = HistoryCache(max_rows=10_000)
    frame = frame_of(cache)
    pks = store(ask_items())
    # Between this request's commit and its hold, another thread of the
    # worker read one of the accounts again, new row included.
    cache._reload([ACCOUNTS[1]], SINCE)
    rows = np.arange(len(ACCOUNTS))
    assert cache.hold_stored(frame, rows, np.array([pks[f"ASK{a}"] for a in rows]))
    database = rows_counted("database")
    assert_same(held(cache), direct())
    # Not held twice: the copy agrees with the database without reading again.
    assert rows_counted("database") == database


def test_it_reads_back_what_it_cannot_tell_apart_from_others_writes(stored):
    cache = HistoryCache(max_rows=10_000)
    frame = frame_of(cache)
    rows = np.arange(len(ACCOUNTS))
    # Another request committed first: the keys do not follow the watermark.
    other = store([item(transaction_id="OTHER", account_id="AC00002")])
    pks = store(ask_items())
    assert not cache.hold_stored(frame, rows, np.array([pks[f"ASK{a}"] for a in rows]))
    # A frame numbered by another copy: its codes are not this copy's.
    elsewhere = frame_of(HistoryCache(max_rows=10_000))
    held(cache)
    more = store([item(transaction_id="LATER", account_id="AC00003")])
    assert not cache.hold_stored(elsewhere, rows[:1], np.array([more["LATER"]]))
    got = held(cache)
    assert {other["OTHER"], more["LATER"], *pks.values()} <= set(got["pk"].tolist())
    assert_same(got, direct())


def test_it_forgets_the_texts_of_batches_it_never_held(stored):
    cache = HistoryCache(max_rows=10_000)
    # A batch scored without being stored, each row from a device never seen.
    junk = frame_from_items(
        [
            item(transaction_id=f"J{n}", account_id=ACCOUNTS[n % 6], device_id=f"JUNK{n}")
            for n in range(5000)
        ]
    )
    window = {"since": SINCE, "before": BEFORE, "exclude_pks": np.array([], dtype=np.int64)}
    assert len(cache.history(targets=junk, **window).vocabularies["device_id"]) > 5000
    frame = cache.history(targets=TARGETS, **window)
    held_devices = set(history_of(frame)["device_id"].tolist())
    assert len(frame.vocabularies["device_id"]) <= len(held_devices) + len(ACCOUNTS)
    assert_same(history_of(frame), direct())


def test_it_starts_again_when_the_table_was_emptied(stored):
    cache = HistoryCache(max_rows=10_000)
    held(cache)
    Transaction.objects.all().delete()
    assert len(held(cache)["pk"]) == 0


def test_it_stays_exact_when_it_must_drop_rows_to_keep_within_its_size(stored):
    cache = HistoryCache(max_rows=60)
    for days in (0, 20, 30):
        window = {"since": SINCE + timedelta(days=days)}
        assert_same(held(cache, **window), direct(**window))
        assert cache.rows <= 60 * 2


def test_batches_of_many_accounts_read_alike_with_and_without_the_copy():
    items = habitual_items(accounts=MIN_ACCOUNTS + 5, per_account=6)
    # Each account's last transaction makes the batch, the rest its history.
    batch = items[5::6]
    stored = store([i for i in items if i not in batch])
    targets = frame_from_items(batch)
    window = {"since": SINCE, "before": BEFORE}
    # Not stored by the request (persist=false), yet one of its ids is stored:
    # left out all the same.
    targets["transaction_id"][0] = items[0].transaction_id
    for _ in range(2):
        frame = recent_history(targets=targets, stored_pks=None, **window)
        got = history_of(frame)
        assert stored[items[0].transaction_id] not in got["pk"]
        assert_same(
            got,
            account_history(
                account_ids=targets["account_id"],
                exclude_transaction_ids=targets["transaction_id"],
                **window,
            ),
        )
        # Then the batch itself, coded alike.
        batch_part = {
            name: values[frame.first_target :] for name, values in frame.decoded().items()
        }
        for name in batch_part:
            np.testing.assert_array_equal(batch_part[name], targets[name], err_msg=name)


def test_nothing_read_inside_a_transaction_is_kept(settings):
    accounts = [f"AC{a:05d}" for a in range(MIN_ACCOUNTS)]
    args = {
        "targets": frame_from_items(ask_items(accounts)),
        "stored_pks": np.array([], dtype=np.int64),
        "since": datetime(2024, 1, 1, tzinfo=UTC),
        "before": datetime(2025, 1, 1, tzinfo=UTC),
    }
    rolled_back = habitual_items(accounts=MIN_ACCOUNTS, per_account=3, seed=1)
    with pytest.raises(RuntimeError), transaction.atomic():
        store(rolled_back)
        assert recent_history(**args).first_target == len(rolled_back)
        raise RuntimeError("roll back")
    # SQLite hands the rolled-back keys out again, to different rows.
    kept = habitual_items(accounts=MIN_ACCOUNTS, per_account=3, seed=2)
    store(kept)
    got = history_of(recent_history(**args))
    assert sorted(got["amount"]) == sorted(float(i.amount) for i in kept)
