"""A per-process copy of the accounts' recent history, for large online batches.

A batch of 1,000 transactions brings hundreds of accounts whose 90-day history
is tens of thousands of stored rows. Reading them again for every request cost
more than all the rest of the request (SQLite: about 3 µs a row, most of it
building Python objects). Each worker process keeps what it read instead, and
keeps it exact, not merely fresh:

* before each use it reads the rows committed since its last read, by primary
  key (``pk > watermark``);
* it then asks the database how many rows the batch's accounts have in the
  window and the sum of their primary keys (answered from the
  ``(account_id, timestamp)`` index alone; on SQLite by a thread of its own,
  while this one builds the frame). Only when that differs from the copy (a
  row deleted, or committed on PostgreSQL after a higher id) does it ask for
  each account's count and highest key, and read again every account whose
  copy differs;
* the columns the features read never change once a transaction is stored,
  and no primary key is given to two rows, except the key of a row that was
  rolled back. So nothing read inside an atomic block is kept (its rows could
  still roll back), and a highest key below the watermark (a database emptied
  or restored) drops the copy.

The copy keeps the text columns the features read (account, city, device,
IP, merchant) as integer codes, each into its own vocabulary, and hands a
request its history and the batch coded alike: the features then hash
integers instead of 25,000 strings per column, and gathering a request's rows
copies integers instead of references.

Small batches read their accounts directly: for a few hundred rows those two
extra queries cost more than they save.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.db import connection

from detection import metrics
from detection.features import FEATURE_INPUTS, Columns, columns_concat, columns_length
from detection.history import (
    account_history,
    latest_pk,
    stored_transactions,
    transactions_after,
    window_counts,
    window_totals,
)

# Below this many accounts a batch reads its history directly. The copy costs
# a millisecond or two whatever the batch (two queries and a pass over what it
# holds), a single transaction's direct read about 0.3 ms; at 10 accounts the
# direct read costs 10 ms and the copy 2 (SQLite, ~100 rows an account).
MIN_ACCOUNTS = 10
_FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
_NOT_HELD = np.iinfo(np.int64).max
# Text columns the copy keeps as codes; the account is coded apart, as the
# copy's own bookkeeping numbers accounts.
_CODED = ("location", "device_id", "ip_address", "merchant_id")
_HELD = ("pk", *(name for name in FEATURE_INPUTS if name != "account_id"))
# Texts a vocabulary may hold beyond twice the rows before it is renumbered.
_SPARE_TEXTS = 4096


def _gathered(values: np.ndarray, rows: np.ndarray, then: np.ndarray) -> np.ndarray:
    """``values[rows]`` followed by ``then``: gathered straight into the one
    array, rather than gathered and then copied again to join them."""
    kind = np.result_type(values, then)
    if kind != values.dtype:
        return np.concatenate([values[rows], then])
    joined = np.empty(len(rows) + len(then), dtype=kind)
    # "clip": the rows are valid, and "raise" would gather into a buffer first.
    np.take(values, rows, out=joined[: len(rows)], mode="clip")
    joined[len(rows) :] = then
    return joined


class _Vocabulary:
    """Texts numbered in the order first seen."""

    def __init__(self) -> None:
        self.code: dict[str, int] = {}
        # Only ever appended to: a request keeps reading the list it was given
        # while later ones add to it (a fresh vocabulary replaces it instead).
        self.texts: list[str] = []

    def encode(self, values: Sequence[str]) -> np.ndarray:
        code = self.code
        try:
            # Nearly always every text is known: looked up by map in C, half
            # the time of numbering each in a Python loop (75 against 150 µs
            # for a batch's 1,000 devices).
            return np.fromiter(map(code.__getitem__, values), np.int64, len(values))
        except KeyError:
            pass
        for value in values:
            if value not in code:
                code[value] = len(code)
                self.texts.append(value)
        return np.fromiter(map(code.__getitem__, values), np.int64, len(values))

    @classmethod
    def of(cls, texts: Sequence[str]) -> _Vocabulary:
        vocabulary = cls()
        vocabulary.texts = list(texts)
        vocabulary.code = {text: i for i, text in enumerate(vocabulary.texts)}
        return vocabulary


@dataclass(frozen=True)
class FeatureFrame:
    """A batch's history then the batch itself, as the features take them:
    ``columns`` (FEATURE_INPUTS) with the batch from ``first_target`` on;
    the columns named in ``vocabularies`` hold codes into those texts."""

    columns: Columns
    first_target: int
    vocabularies: Mapping[str, Sequence[str]]

    def decoded(self) -> Columns:
        """The columns with every code replaced by its text."""
        return {
            name: np.array(self.vocabularies[name], dtype=object)[values]
            if name in self.vocabularies
            else values
            for name, values in self.columns.items()
        }


class _Framed(NamedTuple):
    """A frame and the copy's rows its history came from, in its order."""

    frame: FeatureFrame
    taken: np.ndarray


@cache
def _proof_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-proof")


class _WindowTotals:
    """``window_totals`` of a batch's accounts, read meanwhile by a thread of
    this process with a connection of its own (an SQLite file), or when asked
    for (PostgreSQL: that thread's connection would stay open for good, and a
    test database cannot be dropped while one is; an in-memory SQLite
    database is another one on each connection)."""

    def __init__(self, *, account_ids: list[str], since: datetime, before: datetime) -> None:
        self.query = {"account_ids": account_ids, "since": since, "before": before}
        self.reading: Future[tuple[int, int]] | None = None
        if connection.vendor == "sqlite" and not connection.is_in_memory_db():
            self.reading = _proof_thread().submit(_window_totals_in_thread, **self.query)

    def result(self) -> tuple[int, int]:
        if self.reading is not None:
            return self.reading.result()
        return window_totals(**self.query)


def _window_totals_in_thread(
    *, account_ids: list[str], since: datetime, before: datetime
) -> tuple[int, int]:
    # The thread's connection lives as long as a request's may (CONN_MAX_AGE).
    connection.close_if_unusable_or_obsolete()
    return window_totals(account_ids=account_ids, since=since, before=before)


def _database_in_use() -> tuple[object, ...]:
    """Which database this thread's connection reads: a copy holds one's rows."""
    return (connection.alias, connection.vendor, connection.settings_dict["NAME"])


class HistoryCache:
    """The stored transactions of the accounts recently scored, as columns.

    Rows live in one set of growing arrays, with an ``account code`` column
    and an ``alive`` flag (an account read again leaves its old rows dead until
    the arrays are compacted). ``_covered_since[code]``: the copy holds every
    stored row of that account at or after this time.
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._database: tuple[object, ...] | None = None
        self._clear()
        self._read = 0

    def _clear(self) -> None:
        self._fresh_from = 0
        self._watermark: int | None = None
        self._columns: Columns = {}
        self._size = 0
        self._alive = np.zeros(0, dtype=bool)
        self._account = np.zeros(0, dtype=np.int64)
        self._accounts = _Vocabulary()
        self._vocabularies = {name: _Vocabulary() for name in _CODED}
        self._covered_since = np.zeros(0, dtype=np.int64)

    @property
    def rows(self) -> int:
        """Rows held, dead ones included."""
        return self._size

    def history(
        self,
        *,
        targets: Columns,
        since: datetime,
        before: datetime,
        exclude_pks: np.ndarray,
    ) -> FeatureFrame:
        """What ``account_history`` reads for the accounts of ``targets``,
        minus the rows with these primary keys, in the order SQLite's index
        scan gives them; then ``targets``. ``since`` and ``before`` are whole
        seconds, as the copy keeps times (a fraction would make every use
        read the accounts again)."""
        database = _database_in_use()
        accounts = sorted(set(targets["account_id"].tolist()))
        start, end = int(since.timestamp()), int(before.timestamp())
        with self._lock:
            if database != self._database:
                self._database = database
                self._clear()
            # Rows from here on were read by this request.
            self._read, self._fresh_from = 0, self._size
            self._catch_up()
            codes = self._codes_of(accounts)
            uncovered = [
                account
                for i, account in enumerate(accounts)
                if self._covered_since[codes[i]] > start
            ]
            if uncovered:
                self._reload(uncovered, since)
            # The proof runs meanwhile: its query waits on the database
            # without the GIL while this thread builds the frame.
            proof = _WindowTotals(account_ids=accounts, since=since, before=before)
            rows = self._rows_of(codes, start, end)
            frame = self._frame(targets, codes, rows, exclude_pks)
            if (len(rows), int(self._columns["pk"][rows].sum())) != proof.result():
                rows = self._reload_changed(accounts, codes, rows, since, before)
                frame = self._frame(targets, codes, rows, exclude_pks)
            held = int((frame.taken < self._fresh_from).sum())
            self._compact(horizon=start)
            metrics.record_history(read=self._read, held=held, copy_rows=self._size)
            return frame.frame

    def _frame(
        self, targets: Columns, codes: np.ndarray, rows: np.ndarray, exclude_pks: np.ndarray
    ) -> _Framed:
        """The held ``rows`` but those with these keys, in the direct read's
        order, then ``targets``."""
        rows = rows[~np.isin(self._columns["pk"][rows], exclude_pks)]
        # Accounts in id order, each by time then key: as the direct read
        # returns them, so the features' sums add up in the same order.
        # Ranks in 16 bits when they fit, as a batch's accounts do: numpy sorts
        # those by radix, 0.26 against 1.2 ms for 29,000 rows.
        small = len(codes) <= np.iinfo(np.int16).max
        rank = np.zeros(len(self._covered_since), dtype=np.int16 if small else np.int64)
        rank[codes] = np.arange(len(codes))
        order = np.lexsort(
            (
                self._columns["pk"][rows],
                self._columns["ts"][rows],
                rank[self._account[rows]],
            )
        )
        taken = rows[order]
        coded = self._coded(targets)
        columns = {
            name: _gathered(values, taken, coded[name]) for name, values in self._columns.items()
        }
        columns["account_id"] = _gathered(self._account, taken, coded["account_id"])
        frame = FeatureFrame(
            columns,
            first_target=len(taken),
            vocabularies={
                "account_id": self._accounts.texts,
                **{name: self._vocabularies[name].texts for name in _CODED},
            },
        )
        return _Framed(frame, taken)

    def _coded(self, rows: Columns) -> Columns:
        """``rows`` as the copy holds them, with the account column."""
        coded = {name: rows[name] for name in (*_HELD, "account_id")}
        coded["account_id"] = self._accounts.encode(rows["account_id"])
        for name in _CODED:
            coded[name] = self._vocabularies[name].encode(rows[name])
        return coded

    def _codes_of(self, accounts: list[str]) -> np.ndarray:
        """The accounts' codes; an account seen for the first time gets one,
        with nothing held for it yet."""
        before = len(self._accounts.texts)
        codes = self._accounts.encode(accounts)
        if len(self._accounts.texts) > before:
            unheld = np.full(len(self._accounts.texts) - before, _NOT_HELD, dtype=np.int64)
            self._covered_since = np.concatenate([self._covered_since, unheld])
        return codes

    def _catch_up(self) -> None:
        latest = latest_pk()
        watermark = self._watermark
        if watermark is None or latest < watermark or latest - watermark > self.max_rows:
            # First use, a database emptied or restored, or more new rows than
            # the copy may hold: start empty from here.
            self._clear()
            self._watermark = latest
            return
        if latest == watermark:
            return
        new = transactions_after(after_pk=watermark, upto_pk=latest)
        self._read += columns_length(new)
        self._watermark = latest
        known = np.array(
            [account in self._accounts.code for account in new["account_id"]], dtype=bool
        )
        known &= self._not_held_after(watermark, new["pk"])
        if known.any():
            self._append(self._coded({name: values[known] for name, values in new.items()}))

    def _not_held_after(self, watermark: int, pks: np.ndarray) -> np.ndarray:
        """Which of these keys, all above the watermark, the copy does not
        hold yet: an account read again after the watermark holds its rows."""
        fresh = np.ones(len(pks), dtype=bool)
        if self._size:
            size_pk = self._columns["pk"][: self._size]
            recent = size_pk[(size_pk > watermark) & self._alive[: self._size]]
            if len(recent):
                fresh &= ~np.isin(pks, recent)
        return fresh

    def hold_stored(self, frame: FeatureFrame, rows: np.ndarray, pks: np.ndarray) -> bool:
        """Hold the ``rows`` of ``frame``'s batch, just committed under
        ``pks``, when they are all that was committed since the copy's last
        read: the keys right above its watermark, without a gap. Then the
        next request need not read back what this one wrote. Whether it did."""
        database = _database_in_use()
        if not len(pks):
            return False
        first, last = int(pks.min()), int(pks.max())
        with self._lock:
            if (
                database != self._database
                or self._watermark != first - 1
                or last - first + 1 != len(pks)
                or not self._codes_alike(frame.vocabularies)
            ):
                return False
            batch = {
                name: values[frame.first_target :][rows] for name, values in frame.columns.items()
            }
            batch["pk"] = pks
            fresh = self._not_held_after(first - 1, pks)
            self._append({name: values[fresh] for name, values in batch.items()})
            self._watermark = last
            return True

    def _codes_alike(self, vocabularies: Mapping[str, Sequence[str]]) -> bool:
        """Whether codes into these vocabularies are codes into the copy's:
        a compaction or a new start numbers texts anew."""
        return vocabularies.get("account_id") is self._accounts.texts and all(
            vocabularies.get(name) is self._vocabularies[name].texts for name in _CODED
        )

    def _rows_of(self, codes: np.ndarray, start: int, end: int) -> np.ndarray:
        wanted = np.zeros(len(self._covered_since), dtype=bool)
        wanted[codes] = True
        size = self._size
        ts = self._columns["ts"][:size] if size else np.zeros(0, dtype=np.int64)
        mask = self._alive[:size] & wanted[self._account[:size]] & (ts >= start) & (ts < end)
        return np.flatnonzero(mask)

    def _reload_changed(
        self,
        accounts: list[str],
        codes: np.ndarray,
        rows: np.ndarray,
        since: datetime,
        before: datetime,
    ) -> np.ndarray:
        """Read again the accounts whose held ``rows`` in [since, before)
        differ from what is stored; the rows held then."""
        stored = window_counts(account_ids=accounts, since=since, before=before)
        held_count, held_highest = self._tally(rows, codes)
        stale = [
            account
            for i, account in enumerate(accounts)
            if (int(held_count[i]), int(held_highest[i])) != stored.get(account, (0, -1))
        ]
        if not stale:
            return rows
        self._reload(stale, since)
        return self._rows_of(codes, int(since.timestamp()), int(before.timestamp()))

    def _tally(self, rows: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per requested account (in ``codes`` order): rows held and their
        highest primary key (-1 for none)."""
        position = np.zeros(len(self._covered_since), dtype=np.int64)
        position[codes] = np.arange(len(codes))
        which = position[self._account[rows]]
        count = np.bincount(which, minlength=len(codes))
        highest = np.full(len(codes), -1, dtype=np.int64)
        np.maximum.at(highest, which, self._columns["pk"][rows] if len(rows) else rows)
        return count, highest

    def _reload(self, accounts: list[str], since: datetime) -> None:
        codes = self._accounts.encode(accounts)
        dropped = np.zeros(len(self._covered_since), dtype=bool)
        dropped[codes] = True
        self._alive[: self._size] &= ~dropped[self._account[: self._size]]
        fresh = account_history(account_ids=accounts, since=since, before=_FAR_FUTURE)
        self._read += columns_length(fresh)
        self._append(self._coded(fresh))
        self._covered_since[codes] = int(since.timestamp())

    def _append(self, coded: Columns) -> None:
        """Hold these rows, coded (``_coded``), every account known."""
        added = columns_length(coded)
        coded = dict(coded)
        account = coded.pop("account_id")
        if not self._columns:
            self._columns = {name: values[:0].copy() for name, values in coded.items()}
        if not added:
            return
        end = self._size + added
        if end > len(self._alive):
            self._grow(max(end, 2 * len(self._alive), 1024))
        for name, values in coded.items():
            self._columns[name][self._size : end] = values
        self._account[self._size : end] = account
        self._alive[self._size : end] = True
        self._size = end

    def _grow(self, capacity: int) -> None:
        def grown(values: np.ndarray) -> np.ndarray:
            out = np.zeros(capacity, dtype=values.dtype)
            out[: self._size] = values[: self._size]
            return out

        self._columns = {name: grown(values) for name, values in self._columns.items()}
        self._account = grown(self._account)
        self._alive = grown(self._alive)

    def _compact(self, *, horizon: int) -> None:
        """Drop dead rows and, when the copy is too big, rows older than
        ``horizon`` (what the last request needed); empty it if still too big.
        Also when a vocabulary holds far more texts than rows use them: the
        batches of requests that store nothing (``persist=false``) add their
        texts too."""
        size = self._size
        dead = size - int(self._alive[:size].sum())
        bloated = any(
            len(vocabulary.texts) > 2 * size + _SPARE_TEXTS
            for vocabulary in self._vocabularies.values()
        )
        if dead * 2 < size and size <= self.max_rows and not bloated:
            return
        keep = self._alive[:size].copy()
        if size - dead > self.max_rows:
            keep &= self._columns["ts"][:size] >= horizon
            np.maximum(self._covered_since, horizon, out=self._covered_since)
        if int(keep.sum()) > self.max_rows:
            watermark = self._watermark
            self._clear()
            self._watermark = watermark
            return
        kept = np.flatnonzero(keep)
        self._columns = {name: values[kept] for name, values in self._columns.items()}
        # Texts only dropped rows used go with them; the rest are numbered
        # anew. Accounts keep their codes: ``_covered_since`` is by code.
        for name in _CODED:
            used, self._columns[name] = np.unique(self._columns[name], return_inverse=True)
            texts = self._vocabularies[name].texts
            self._vocabularies[name] = _Vocabulary.of([texts[code] for code in used.tolist()])
        self._account = self._account[kept]
        self._alive = np.ones(len(kept), dtype=bool)
        self._size = len(kept)


def hold_stored(frame: FeatureFrame, rows: np.ndarray, pks: np.ndarray) -> None:
    """After a commit: let this process' copy hold the ``rows`` of ``frame``'s
    batch just stored under ``pks``, when ``frame`` came from the copy."""
    if frame.vocabularies and not connection.in_atomic_block:
        _process_cache().hold_stored(frame, rows, pks)


@cache
def _process_cache() -> HistoryCache:
    return HistoryCache(max_rows=settings.ML_HISTORY_CACHE_ROWS)


def recent_history(
    *,
    targets: Columns,
    stored_pks: np.ndarray | None,
    since: datetime,
    before: datetime,
) -> FeatureFrame:
    """The stored transactions in [since, before) of the accounts of
    ``targets``, except the targets' own (``stored_pks``: the primary keys of
    those of them that are stored, None when not known), then ``targets``:
    from this process' copy when it pays off."""
    accounts = set(targets["account_id"].tolist())
    if (
        settings.ML_HISTORY_CACHE_ROWS == 0
        or len(accounts) < MIN_ACCOUNTS
        or connection.in_atomic_block
    ):
        history = account_history(
            account_ids=accounts,
            since=since,
            before=before,
            exclude_transaction_ids=targets["transaction_id"],
        )
        metrics.record_history(read=columns_length(history), held=0)
        names = ("pk", *FEATURE_INPUTS)
        return FeatureFrame(
            columns_concat([{name: part[name] for name in names} for part in (history, targets)]),
            first_target=columns_length(history),
            vocabularies={},
        )
    if stored_pks is None:
        stored_pks = stored_transactions(transaction_ids=targets["transaction_id"].tolist())["pk"]
    return _process_cache().history(
        targets=targets, since=since, before=before, exclude_pks=stored_pks
    )
