"""Features of a transaction from the transaction and its account's history.

One code path serves training, batch scoring and online scoring: callers put
the account history they have (stored transactions) and the transactions to
score into one ``TxFrame`` and ``compute_features`` derives, for every row,
signals from the rows of the same account that happened **strictly before**
it and within ``lookback`` seconds. Training passes every stored transaction;
serving passes the stored history of the batch's accounts plus the batch. As
long as the history covers the lookback window, a transaction gets the same
features in both, and never sees itself or anything later.

Everything is vectorised with numpy: one sort, then window sums from cumulative
sums and ``searchsorted`` over (group, time) keys. A million rows take about a
second; a single transaction with its history a fraction of a millisecond.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple, TypeVar

import numpy as np
import pandas as pd

T = TypeVar("T")
HOUR = 3600
DEBIT = "Debit"  # TransactionType.DEBIT, without importing Django models here
DAY = 86400
MERCHANT_BURST_WINDOW = 3 * DAY
# A merchant's price offset counts as this many extra payments at offset 0.
_OFFSET_PRIOR_COUNT = 5.0
# Group codes go in the high bits and epoch seconds (< 2**33 until year 2242)
# in the low bits of one int64 sort key.
_TIME_BITS = np.int64(34)
_MAX_GROUP_CODE = 1 << (63 - int(_TIME_BITS))
_SMALL_FACTORIZE = 256
# From this many rows on, an order is sorted by packed keys (_rows_in_order).
_PACKED_SORT_FROM = 2048
# The online pair keys ascend at 83 % of neighbours, a bulk read's at 50 %.
_ASCENDING_SHARE = 0.75
# Up to this many rows (an online request's account history), computing every
# row costs less than finding the few a request needs.
_SMALL_FRAME = 256
# From this many rows on, the (account, value) pairs are ordered in a second
# thread while this one orders and sums the account windows (_pair_thread).
_PARALLEL_FROM = 4096

# Inputs a TxFrame carries, in the order the database query returns them.
COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "account_id",
    "ts",
    "amount",
    "transaction_type",
    "location",
    "device_id",
    "ip_address",
    "merchant_id",
    "channel",
    "customer_age",
    "duration_seconds",
    "login_attempts",
    "account_balance",
)

# What compute_features reads of a frame.
FEATURE_INPUTS: tuple[str, ...] = tuple(
    name for name in COLUMNS if name not in ("transaction_id", "channel", "customer_age")
)

# The earlier system's calendar features (day-of-month cosine fixed). No model
# uses them (see MODEL_FEATURES), so scoring skips them unless a model asks.
CALENDAR_FEATURES: tuple[str, ...] = (
    "hour",
    "weekday",
    "month",
    "day",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
    "month_sin",
    "month_cos",
    "day_sin",
    "day_cos",
)

# Every feature compute_features produces; the models use MODEL_FEATURES.
ALL_FEATURES: tuple[str, ...] = (
    *CALENDAR_FEATURES,
    # amount
    "log_amount",
    "amount_vs_account",
    "amount_z_account",
    "amount_to_funds",
    "high_share_of_funds",
    "merchant_amount_z",
    "merchant_novelty",
    "merchant_burst",
    # history and velocity
    "account_history",
    "log_since_previous",
    "count_1h",
    "count_24h",
    "sum_24h_vs_typical",
    # familiarity: share of the account's recent transactions with the same value
    "device_share",
    "ip_share",
    "location_share",
    "merchant_share",
    "new_device",
    "new_ip",
    "new_location",
    "new_merchant",
    # habits and session
    "hour_deviation",
    "login_attempts",
    "log_duration",
    "duration_vs_account",
)

# Chosen by the labelled evaluation (docs/features.md): calendar features are
# uniform in normal traffic and only add noise to both detectors.
MODEL_FEATURES: tuple[str, ...] = (
    "log_amount",
    "amount_vs_account",
    "amount_z_account",
    "amount_to_funds",
    "merchant_amount_z",
    "merchant_novelty",
    "merchant_burst",
    "account_history",
    "log_since_previous",
    "count_1h",
    "count_24h",
    "sum_24h_vs_typical",
    "device_share",
    "ip_share",
    "location_share",
    "merchant_share",
    "hour_deviation",
    "login_attempts",
    "log_duration",
)


@dataclass(frozen=True)
class MerchantStats:
    """What merchants' customers usually pay, fitted on training data and
    shipped in the artifact, so online scoring needs no scan of a merchant's
    history.

    ``mean``/``std``: log-amounts at the merchant (merchant_amount_z).
    ``offset``: the merchant's price level, how far its payments sit above or
    below its customers' own usual amounts in log units, shrunk towards 0 for
    merchants with few payments. Subtracting it lets an account's amounts at
    a dear and a cheap merchant be compared with each other (amount_z_account).
    ``fingerprint`` names one fit: detectors trained together share it, so
    scoring computes their features once.
    """

    mean: Mapping[str, float]
    std: Mapping[str, float]
    global_mean: float
    global_std: float
    offset: Mapping[str, float] = field(default_factory=dict)
    fingerprint: str = ""

    @classmethod
    def fit(
        cls, merchant_id: np.ndarray, amount: np.ndarray, account_id: np.ndarray
    ) -> MerchantStats:
        log_amount = np.log1p(amount.astype(np.float64))
        frame = pd.DataFrame({"m": merchant_id, "a": account_id, "x": log_amount})
        grouped = frame.groupby("m", sort=False)["x"].agg(["mean", "std", "count"])
        # Merchants with few transactions borrow the global spread.
        global_mean = float(log_amount.mean()) if len(log_amount) else 0.0
        global_std = float(log_amount.std()) if len(log_amount) > 1 else 1.0
        std = grouped["std"].where(grouped["count"] >= 10, global_std).fillna(global_std)
        std = std.clip(lower=0.1)
        above_own = frame["x"] - frame.groupby("a", sort=False)["x"].transform("mean")
        by_merchant = above_own.groupby(frame["m"], sort=False).agg(["sum", "count"])
        offset = by_merchant["sum"] / (by_merchant["count"] + _OFFSET_PRIOR_COUNT)
        return cls(
            mean={str(k): float(v) for k, v in grouped["mean"].items()},
            std={str(k): float(v) for k, v in std.items()},
            global_mean=global_mean,
            global_std=max(global_std, 0.1),
            offset={str(k): float(v) for k, v in offset.items()},
            fingerprint=uuid.uuid4().hex,
        )

    def zscore(self, merchant_id: np.ndarray, log_amount: np.ndarray) -> np.ndarray:
        codes, uniques = _factorize(merchant_id)
        mean, std, _ = self.of(uniques)
        return (log_amount - mean[codes]) / std[codes]

    def of(self, merchants: Sequence[object]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, spread and price offset of each of these (distinct) merchants."""

        def lookup(mapping: Mapping[str, float], default: float) -> np.ndarray:
            return np.fromiter((mapping.get(m, default) for m in merchants), np.float64)

        return (
            lookup(self.mean, self.global_mean),
            lookup(self.std, self.global_std),
            lookup(self.offset, 0.0),
        )


# A batch of transactions as parallel numpy arrays, one per column. Plain
# arrays instead of a DataFrame: pandas' per-call overhead would otherwise be
# most of the cost of scoring a single transaction.
Columns = dict[str, np.ndarray]


def columns_concat(parts: Sequence[Columns]) -> Columns:
    parts = [part for part in parts if len(next(iter(part.values())))]
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def columns_take(columns: Columns, rows: np.ndarray | slice) -> Columns:
    return {name: values[rows] for name, values in columns.items()}


def columns_length(columns: Columns) -> int:
    return len(next(iter(columns.values())))


def _factorize(values: np.ndarray) -> tuple[np.ndarray, Sequence[object]]:
    """Dense int codes of ``values`` (in order of first appearance) and the
    distinct values."""
    # The ends first: comparing every element of a 25,000-row object array
    # costs a millisecond, and the ends of a multi-account column mostly differ.
    if len(values) and values[0] == values[-1] and (values == values[0]).all():
        # One account's history, as online requests mostly bring.
        return np.zeros(len(values), dtype=np.int64), [values[0]]
    if len(values) <= _SMALL_FACTORIZE:
        # For the hundred-odd rows of an online request a dict beats pandas.
        seen: dict[object, int] = {}
        codes = np.fromiter((seen.setdefault(v, len(seen)) for v in values), np.int64, len(values))
        return codes, list(seen)
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), uniques


def _codes(values: np.ndarray) -> np.ndarray:
    return _factorize(values)[0]


def _codes_after(values: np.ndarray, uniques: Sequence[object]) -> np.ndarray:
    """Codes of ``values`` continuing a factorisation whose distinct values
    were ``uniques``: what ``_codes`` of both columns concatenated would give
    the second, without hashing the first again."""
    known = {value: code for code, value in enumerate(uniques)}
    return np.fromiter((known.setdefault(v, len(known)) for v in values), np.int64, len(values))


def _time_key(group: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """(group, time) packed into one int64: the group in the high bits."""
    return (group << _TIME_BITS) | ts


def _group_time_order(group: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows' order by (group, time), ties in row order, and their packed
    (group, time) keys in that order. A stable sort of the one packed key is
    the same order as ``np.lexsort((ts, group))``, three times faster."""
    key = _time_key(group, ts)
    order = _rows_in_order(group, ts) if len(key) >= _PACKED_SORT_FROM else None
    if order is None:
        order = np.argsort(key, kind="stable")
    return order, key[order]


def _rows_in_order(group: np.ndarray, ts: np.ndarray) -> np.ndarray | None:
    """The rows by (group, time, row), when the three fit one int64 together:
    sorting the values, which numpy does with SIMD, then reading the rows off
    their low bits took 1.7 against 4.3 ms for a stable argsort of a batch's
    106,000 pair keys; None when they do not fit."""
    start = int(ts.min())
    time_bits = (int(ts.max()) - start).bit_length()
    row_bits = (len(ts) - 1).bit_length()
    if int(group.max()).bit_length() + time_bits + row_bits > 63 or int(group.min()) < 0:
        return None
    packed = (group << (time_bits + row_bits)) | ((ts - start) << row_bits)
    packed |= np.arange(len(ts), dtype=np.int64)
    packed.sort(kind="stable" if _mostly_ascending(packed) else "quicksort")
    return packed & ((1 << row_bits) - 1)


def _mostly_ascending(values: np.ndarray) -> bool:
    """Whether at least ``_ASCENDING_SHARE`` of neighbouring values ascend.

    An online batch's frame is its accounts' history in (account, time)
    order, then the batch: its account keys come nearly sorted, and its pair
    keys in a few interleaved sorted runs per account. numpy's stable sort
    (timsort) merges such runs: 0.02 against 0.54 ms for a batch's 20,000
    account keys, 0.65 against 2.8 ms for its 80,000 pair keys. In random
    order, as a bulk read in key order gives them, its quicksort is the
    faster, by about a sixth from a million keys on.
    """
    ascending = np.count_nonzero(values[1:] > values[:-1])
    return ascending >= _ASCENDING_SHARE * (len(values) - 1)


def _window_bounds(
    key: np.ndarray, order: np.ndarray, rows: np.ndarray | None, widths: Sequence[int]
) -> np.ndarray:
    """For each of ``rows`` (every row when None), in row order, positions in
    the (group, time)-sorted ``key``: first the row's own time, where its
    windows end, then its time minus each of ``widths``, where they start.
    Rows in between are its windows. One row per bound."""
    if rows is None:
        # Sorted queries search faster; the answers then go back to row order.
        found = _bounds_of(key, key, widths)
        unsorted = np.empty_like(found)
        unsorted[:, order] = found
        return unsorted
    return _bounds_of(key, key[_positions(order)[rows]], widths)


def _bounds_of(key: np.ndarray, own: np.ndarray, widths: Sequence[int]) -> np.ndarray:
    """Where the (group, time) keys ``own`` fall in the sorted ``key``, then
    where each of them less each of ``widths`` does: one search for all."""
    return np.searchsorted(
        key, np.concatenate([own, *(own - width for width in widths)]), side="left"
    ).reshape(1 + len(widths), len(own))


def _positions(order: np.ndarray) -> np.ndarray:
    """Where each row stands in ``order``."""
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    return position


def _cumulative_columns(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Running sums of each of ``columns``, one row each, after a zero: the
    sums of any window of rows by one subtraction (``_window_sums``),
    whichever windows are asked for later. One cumsum per column: numpy's
    cumsum along either axis of a 2-D array took three times as long (20,000
    rows by 7: 1.6-2.0 against 0.6 ms)."""
    cumulative = np.zeros((len(columns), len(columns[0]) + 1))
    for row, values in zip(cumulative, columns, strict=True):
        np.cumsum(values, dtype=np.float64, out=row[1:])
    return cumulative


def _window_sums(cumulative: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The sums of each column between ``start`` and ``end``, one row each."""
    return cumulative[:, end] - cumulative[:, start]


class _PairOrder(NamedTuple):
    """Every (account, value) pair of each kind of value (device, IP, …) in
    one (pair, time) order: each pair has a group code of its own, kinds
    stacked one after another. ``run_start``: for each sorted key, where its
    run of equal keys (same pair, same second) begins."""

    order: np.ndarray
    key: np.ndarray
    kinds: int
    run_start: np.ndarray


def _pair_order(account: np.ndarray, values: Sequence[np.ndarray], ts: np.ndarray) -> _PairOrder:
    accounts = np.int64(account.max(initial=0)) + 1
    room = _MAX_GROUP_CODE // (len(values) * accounts)
    groups = []
    base = np.int64(0)
    for column in values:
        # A pair needs distinct codes, not dense ones: a column of codes (into
        # a vocabulary) is taken as it is while the packed key has room for
        # it, which spares factorizing it again (0.2 ms per 12,000 rows).
        codes = column if column.dtype.kind == "i" else _codes(column)
        width = np.int64(codes.max(initial=0)) + 1
        if width > room and codes is column:
            codes = _codes(column)
            width = np.int64(codes.max(initial=0)) + 1
        groups.append(account * width + codes + base)
        base += accounts * width
    group = np.concatenate(groups)
    if base >= _MAX_GROUP_CODE:
        # Too large for the packed sort key: renumber densely.
        group = _codes(group)
    order, key = _group_time_order(group, np.tile(ts, len(values)))
    starts = np.ones(len(key), dtype=bool)
    starts[1:] = key[1:] != key[:-1]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(key)), 0))
    return _PairOrder(order, key, len(values), run_start)


@cache
def _pair_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="feature-pairs")


def _meanwhile(parallel: bool, work: Callable[..., T], *args: object) -> Callable[[], T]:
    """``work(*args)``'s result when asked for: with ``parallel``, computed
    in the pair thread meanwhile, else then. A large frame's pair sorts and
    counts and its account windows' sorts and sums are numpy work that runs
    without the GIL, so the two threads share both cores: features of a batch
    of 1,000 against 19,000 rows of history 5.5 against 6.6 ms."""
    if not parallel:
        return lambda: work(*args)
    return _pair_thread().submit(work, *args).result


def _pair_previous_counts(pairs: _PairOrder, lookback: int, rows: np.ndarray | None) -> np.ndarray:
    """For each kind: how often the account used the row's value in its
    window, for ``rows`` (every row when None), one kind per row."""
    key, order = pairs.key, pairs.order
    # A row's window ends where its run of equal keys begins, which is known
    # without a search; only where it starts is searched for.
    if rows is None:
        # Sorted queries search faster; the counts then go back to row order.
        counts = np.empty(len(key), dtype=np.int64)
        counts[order] = pairs.run_start - np.searchsorted(key, key - lookback)
    else:
        n = len(key) // pairs.kinds
        every_kind = (np.arange(pairs.kinds, dtype=np.int64)[:, None] * n + rows).ravel()
        at = _positions(order)[every_kind]
        counts = pairs.run_start[at] - np.searchsorted(key, key[at] - lookback)
    return counts.astype(np.float64).reshape(pairs.kinds, -1)


def _first_uses(pairs: _PairOrder, kind: int, lookback: int) -> np.ndarray:
    """Per row, whether the account had not used the row's value of ``kind``
    in its window: the rows whose pair count is 0, without a search."""
    key, run_start = pairs.key, pairs.run_start
    # Each sorted key's predecessor that is strictly smaller: the one before
    # its run of equal keys.
    previous = key[np.maximum(run_start - 1, 0)]
    # Another pair's keys all sort below ``key - lookback``: times stay below
    # 2**33 in the low 34 bits.
    unused = (run_start == 0) | (previous < key - lookback)
    n = len(key) // pairs.kinds
    in_rows = np.empty(len(key), dtype=bool)
    in_rows[pairs.order] = unused
    return in_rows[kind * n : (kind + 1) * n]


def _merchant_burst(
    frame: Columns,
    merchant: np.ndarray,
    merchants: Sequence[object],
    novelty: np.ndarray,
    merchant_recent: Columns | None,
    rows: np.ndarray | None,
) -> np.ndarray:
    """Sum of merchant_novelty of the merchant's transactions in the window
    before each of ``rows`` (every row of ``frame`` when None): a compromised
    merchant shows as several accounts, new to it, spending well above their
    habits within days.
    ``merchant_recent`` adds stored transactions of other accounts that are
    not in ``frame``; ``merchant`` is the frame's merchant codes and
    ``merchants`` the distinct merchants they number."""
    ts = frame["ts"].astype(np.int64)
    # Only the rows with novelty add to a burst, a few in a hundred: sorting
    # and summing those alone, in the same order, gives the same sums to the
    # bit as summing every row, and spares sorting the whole frame again.
    adding = np.flatnonzero(novelty)
    codes, times, values = merchant[adding], ts[adding], novelty[adding]
    if merchant_recent is not None and len(merchant_recent["ts"]):
        codes = np.concatenate([codes, _codes_after(merchant_recent["merchant_id"], merchants)])
        times = np.concatenate([times, merchant_recent["ts"].astype(np.int64)])
        values = np.concatenate([values, merchant_recent["novelty"].astype(np.float64)])
    order, key = _group_time_order(codes, times)
    wanted = slice(None) if rows is None else rows
    # The wanted rows need not be among those summed: their bounds are found
    # from their own keys.
    end, start = _bounds_of(key, _time_key(merchant[wanted], ts[wanted]), (MERCHANT_BURST_WINDOW,))
    (sums,) = _window_sums(_cumulative_columns([values[order]]), start, end)
    return np.log1p(sums)


def _with_burst_sources(
    wanted: np.ndarray,
    merchant: np.ndarray,
    ts: np.ndarray,
    first_use: np.ndarray,
    transaction_type: np.ndarray,
) -> np.ndarray:
    """``wanted`` and every row whose merchant novelty can count in a wanted
    row's merchant burst, in row order: the rows whose features must be
    computed. Novelty counts at the same merchant, less than the burst
    window before; and it is 0 but for a debit at a merchant the account had
    not used in its window (``first_use``), a few rows in a hundred."""
    if not len(wanted):
        return wanted
    near = np.flatnonzero(
        first_use
        & np.isin(merchant, merchant[wanted])
        & (ts >= ts[wanted].min() - MERCHANT_BURST_WINDOW)
        & (ts < ts[wanted].max())
    )
    sources = np.zeros(len(ts), dtype=bool)
    sources[near[transaction_type[near] == DEBIT]] = True
    sources[wanted] = True
    return np.flatnonzero(sources)


def needs_calendar(names: Sequence[str]) -> bool:
    """Whether features ``names`` (a model's) include a calendar feature: the
    ``calendar`` argument of compute_features for that model."""
    return not set(CALENDAR_FEATURES).isdisjoint(names)


def compute_features(
    frame: Columns,
    *,
    lookback: int,
    merchant_stats: MerchantStats | None,
    merchant_recent: Columns | None = None,
    calendar: bool = True,
    rows: np.ndarray | slice | None = None,
    vocabularies: Mapping[str, Sequence[str]] | None = None,
) -> Columns:
    """All features of the ``rows`` of ``frame`` (columns ``FEATURE_INPUTS``;
    every row when None), in that order; without ``calendar``, all but
    CALENDAR_FEATURES. A text column may come as integer codes into its
    ``vocabularies`` entry: the features are the same, to the bit.

    Every row of ``frame`` is history to the others, but only the rows asked
    for, and the few whose merchant novelty their merchant burst adds up, get
    features: a batch of 1,000 scored against 25,000 rows of history pays
    for sorting and summing those rows once, not for 26,000 rows of
    features. A row's features do not depend on which rows are asked for:
    to the bit, but for the merchant burst's last digit (its sums run over
    the novelty of rows no wanted row needs, left at 0).
    """
    ts = frame["ts"].astype(np.int64)
    n = len(ts)
    amount = frame["amount"].astype(np.float64)
    duration = frame["duration_seconds"].astype(np.float64)
    account = _codes(frame["account_id"])
    merchant, merchants = _factorize(frame["merchant_id"])
    if vocabularies and "merchant_id" in vocabularies:
        texts = vocabularies["merchant_id"]
        merchants = [texts[code] for code in merchants]
    if merchant_stats is not None:
        merchant_mean, merchant_std, merchant_offset = merchant_stats.of(merchants)
        price = merchant_offset[merchant]
    else:
        price = np.zeros(n)
    # Every row sorted by (account, time), and by (account, value, time) for
    # the familiarity of the device, IP, location and merchant: the pairs in
    # a second thread when there are many, while this one does every part of
    # the account windows that does not depend on which rows are computed.
    kinds = ("device", "ip", "location", "merchant")
    values = [frame["device_id"], frame["ip_address"], frame["location"], merchant]
    parallel = n >= _PARALLEL_FROM
    pairs_of = _meanwhile(parallel, _pair_order, account, values, ts)
    order, key = _group_time_order(account, ts)
    days = ts // DAY
    hour = (ts - days * DAY) / HOUR
    log_amount = np.log1p(amount)
    # Amounts with the merchant's price level taken out: 80 at a dear merchant
    # and 30 at a cheap one can both be this account's usual spending.
    adjusted = log_amount - price
    sorted_adjusted = adjusted[order]
    # Circular mean of the hours the account was active: the resultant length
    # says how regular it is, so an irregular account's odd hours matter less.
    angle = 2 * np.pi * hour / 24.0
    log_duration = np.log1p(duration)
    # Running sums of what the windows average, and of the amounts (their
    # sum over the last day), in (account, time) order.
    cumulative = _cumulative_columns(
        [
            log_amount[order],
            sorted_adjusted,
            sorted_adjusted**2,
            log_duration[order],
            np.sin(angle[order]),
            np.cos(angle[order]),
            amount[order],
        ]
    )
    pairs = pairs_of()
    # ``need``: the rows computed below; ``pick``: where the wanted ones are
    # among them. Every row, or a small frame, is computed whole (slices are
    # views: no copies); otherwise only what the wanted rows need.
    need: np.ndarray | slice
    if rows is None:
        need = pick = slice(None)
    elif n <= _SMALL_FRAME:
        need, pick = slice(None), rows
    else:
        wanted = np.arange(n)[rows]
        first_use = _first_uses(pairs, kinds.index("merchant"), lookback)
        need = _with_burst_sources(wanted, merchant, ts, first_use, frame["transaction_type"])
        pick = np.searchsorted(need, wanted)
    # The same rows as indexes, None for all of them.
    needed = None if isinstance(need, slice) else need
    used_of = _meanwhile(parallel, _pair_previous_counts, pairs, lookback, needed)

    out: dict[str, np.ndarray] = {}
    if calendar:
        out.update(_calendar_features(days[need], hour[need]))

    row_amount, row_log_amount = amount[need], log_amount[need]
    out["log_amount"] = row_log_amount
    # Balance is recorded after the transaction; amount + balance is what the
    # account held when it was made.
    balance = frame["account_balance"][need].astype(np.float64)
    out["amount_to_funds"] = row_amount / np.maximum(row_amount + balance, 1.0)
    out["high_share_of_funds"] = (out["amount_to_funds"] >= 0.75).astype(np.float64)
    if merchant_stats is not None:
        codes = merchant[need]
        z_merchant = (row_log_amount - merchant_mean[codes]) / merchant_std[codes]
        out["merchant_amount_z"] = np.clip(z_merchant, -10, 10)
    else:
        out["merchant_amount_z"] = np.zeros(len(row_log_amount))

    # --- per-account windows over (account, time) order -------------------
    # Every window ends where the row's time begins; one search finds all ends
    # and starts (numpy's per-call cost dominates a single request's features).
    end, start, hour_start, day_start = _window_bounds(key, order, needed, (lookback, HOUR, DAY))
    count = (end - start).astype(np.float64)
    has_history = count > 0
    safe_count = np.maximum(count, 1.0)

    # Means over each row's lookback window, all columns in one pass.
    mean, adjusted_mean, adjusted_mean_sq, duration_mean, sin_mean, cos_mean = (
        _window_sums(cumulative[:6], start, end) / safe_count
    )
    row_adjusted = adjusted[need]
    row_ts, row_log_duration = ts[need], log_duration[need]
    vs_account = np.where(has_history, row_log_amount - mean, 0.0)
    adjusted_std = np.sqrt(np.maximum(adjusted_mean_sq - adjusted_mean**2, 0.0))
    vs_habit = np.where(has_history, row_adjusted - adjusted_mean, 0.0)
    # Few past amounts give an unreliable spread; 0.25 in log units (~30 %) is
    # the floor so one repeated amount doesn't make every change look extreme.
    z = np.where(count >= 3, vs_habit / np.maximum(adjusted_std, 0.25), 0.0)

    # Previous transaction strictly before this one (ties share a timestamp).
    previous_ts = np.where(has_history, ts[order][np.maximum(end - 1, 0)], row_ts - lookback)

    (sum_24h,) = _window_sums(cumulative[6:], day_start, end)
    typical = np.where(has_history, np.expm1(mean), np.maximum(row_amount, 1.0))

    resultant = np.sqrt(sin_mean**2 + cos_mean**2)
    mean_angle = np.arctan2(sin_mean, cos_mean)
    out.update(
        {
            "amount_vs_account": vs_account,
            "amount_z_account": np.clip(z, -10, 10),
            "account_history": np.log1p(count),
            "log_since_previous": np.log1p(np.maximum(row_ts - previous_ts, 0)),
            "count_1h": np.log1p((end - hour_start).astype(np.float64)),
            "count_24h": np.log1p((end - day_start).astype(np.float64)),
            "sum_24h_vs_typical": np.log1p(sum_24h / np.maximum(typical, 1.0)),
            "hour_deviation": np.where(
                count >= 3, resultant * (1.0 - np.cos(angle[need] - mean_angle)), 0.0
            ),
            "duration_vs_account": np.where(has_history, row_log_duration - duration_mean, 0.0),
        }
    )

    # --- familiarity with the device, IP, location and merchant --------------
    # Without history nothing is "new" or "unusual": that case is told apart by
    # account_history instead, so first transactions are not all outliers.
    used = used_of()
    seen_before = count > 0
    shares = np.where(seen_before, used / np.maximum(count, 1.0), 1.0)
    new = (seen_before & (used == 0)).astype(np.float64)
    for i, name in enumerate(kinds):
        out[f"{name}_share"] = shares[i]
        out[f"new_{name}"] = new[i]

    # A payment well above the account's habit to a merchant new to it: what a
    # compromised merchant's victims show. Money coming in (salary, refunds)
    # from a new source is no such sign, and counting it drowned the signal.
    debit = frame["transaction_type"][need] == DEBIT
    out["merchant_novelty"] = debit * out["new_merchant"] * np.maximum(out["amount_z_account"], 0.0)
    # Rows outside ``need`` have no novelty or never count in a wanted row's
    # burst.
    novelty = np.zeros(n)
    novelty[need] = out["merchant_novelty"]
    out["merchant_burst"] = _merchant_burst(
        frame, merchant, merchants, novelty, merchant_recent, needed
    )
    out["login_attempts"] = frame["login_attempts"][need].astype(np.float64)
    out["log_duration"] = row_log_duration
    return {name: out[name][pick] for name in ALL_FEATURES if name in out}


def _calendar_features(days: np.ndarray, hour: np.ndarray) -> Columns:
    weekday = ((days + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
    dates = days.astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    month = (months.astype(np.int64) % 12 + 1).astype(np.float64)
    day = ((dates - months).astype(np.int64) + 1).astype(np.float64)
    out = {"hour": hour, "weekday": weekday, "month": month, "day": day}
    for name, value, period in (
        ("hour", hour, 24.0),
        ("weekday", weekday, 7.0),
        ("month", month - 1, 12.0),
        ("day", day - 1, 31.0),
    ):
        angle = 2 * np.pi * value / period
        out[f"{name}_sin"] = np.sin(angle)
        out[f"{name}_cos"] = np.cos(angle)
    return out


def feature_matrix(features: Columns, names: Sequence[str] = MODEL_FEATURES) -> np.ndarray:
    return np.column_stack([features[name] for name in names])
