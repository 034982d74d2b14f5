from __future__ import annotations

import math
import threading
from datetime import timedelta

import numpy as np
import pytest

from detection import features as features_module
from detection.features import (
    _PARALLEL_FROM,
    _SMALL_FRAME,
    ALL_FEATURES,
    CALENDAR_FEATURES,
    DEBIT,
    MerchantStats,
    _group_time_order,
    columns_take,
    compute_features,
)
from detection.history import frame_from_items
from detection.models import TransactionType
from tests.factories import START, habitual_items, item

DAY = 86400
LOOKBACK = 90 * DAY


def features_of(items, lookback=LOOKBACK):
    return compute_features(frame_from_items(items), lookback=lookback, merchant_stats=None)


def row(features, i):
    return {name: float(features[name][i]) for name in ALL_FEATURES}


def test_it_never_lets_a_feature_see_its_own_or_later_transactions():
    items = habitual_items(accounts=6, per_account=20, seed=3)
    full = features_of(items)
    frame = frame_from_items(items)
    for i in range(0, len(items), 7):
        same_account = frame["account_id"] == frame["account_id"][i]
        earlier = same_account & (frame["ts"] < frame["ts"][i])
        # Only the strictly earlier history of the account, then the row itself.
        rows = np.concatenate([np.flatnonzero(earlier), [i]])
        alone = compute_features(columns_take(frame, rows), lookback=LOOKBACK, merchant_stats=None)
        assert row(alone, len(rows) - 1) == pytest.approx(row(full, i), rel=1e-9, abs=1e-12)


def test_it_gives_past_transactions_the_same_features_whatever_comes_later():
    items = habitual_items(accounts=3, per_account=15, seed=4)
    before = features_of(items[:30])
    later = features_of(items)
    for i in range(30):
        assert row(later, i) == pytest.approx(row(before, i))


def test_it_does_not_let_transactions_at_the_same_second_see_each_other():
    first = item(transaction_id="A1", timestamp="2024-03-01T10:00:00Z", device_id="D1")
    twin = item(transaction_id="A2", timestamp="2024-03-01T10:00:00Z", device_id="D2")
    features = features_of([first, twin])
    assert list(features["account_history"]) == [0.0, 0.0]
    assert list(features["count_1h"]) == [0.0, 0.0]


def test_it_computes_amount_and_velocity_signals_from_the_history():
    items = [
        item(transaction_id="T1", amount="10.00", timestamp="2024-03-01T10:00:00Z"),
        item(transaction_id="T2", amount="10.00", timestamp="2024-03-01T10:30:00Z"),
        item(transaction_id="T3", amount="10.00", timestamp="2024-03-01T10:40:00Z"),
        item(
            transaction_id="T4",
            amount="1000.00",
            timestamp="2024-03-01T11:20:00Z",
            device_id="D999",
            location="Austin",
        ),
    ]
    features = features_of(items)
    last = row(features, 3)
    assert last["account_history"] == pytest.approx(math.log1p(3))
    # T1 (80 minutes earlier) is outside the hour; T2 and T3 are inside.
    assert last["count_1h"] == pytest.approx(math.log1p(2))
    assert last["count_24h"] == pytest.approx(math.log1p(3))
    assert last["log_since_previous"] == pytest.approx(math.log1p(40 * 60))
    assert last["amount_vs_account"] == pytest.approx(math.log1p(1000) - math.log1p(10))
    assert last["new_device"] == 1.0
    assert last["new_location"] == 1.0
    assert last["new_merchant"] == 0.0
    assert last["device_share"] == 0.0
    assert last["merchant_share"] == 1.0
    assert last["sum_24h_vs_typical"] == pytest.approx(math.log1p(30 / 10), rel=1e-6)


def test_it_counts_each_kind_of_value_per_account_apart_from_the_others():
    # The same string as a device, a merchant and another account's device:
    # each is a different (account, kind, value) and must be counted alone.
    def tx(n, account, device, merchant, minute):
        return item(
            transaction_id=f"K{n}",
            account_id=account,
            device_id=device,
            merchant_id=merchant,
            timestamp=f"2024-03-01T10:{minute:02d}:00Z",
        )

    items = [
        tx(1, "AC1", "X1", "M1", 0),
        tx(2, "AC1", "X1", "M1", 1),
        tx(3, "AC2", "X2", "X1", 2),
        tx(4, "AC2", "X1", "X1", 3),
        tx(5, "AC1", "X2", "X1", 4),
    ]
    features = features_of(items)
    fourth, fifth = row(features, 3), row(features, 4)
    # AC2 paid merchant X1 before but never used device X1 (AC1 did).
    assert (fourth["new_device"], fourth["new_merchant"]) == (1.0, 0.0)
    assert fourth["merchant_share"] == 1.0
    # AC1 used device X1 twice, never device X2 nor merchant X1 (AC2 did).
    assert (fifth["new_device"], fifth["new_merchant"]) == (1.0, 1.0)
    assert fifth["device_share"] == 0.0
    assert row(features, 1)["device_share"] == 1.0


def test_it_skips_the_calendar_features_only_when_told_and_changes_nothing_else():
    frame = frame_from_items(habitual_items(accounts=3, per_account=12, seed=8))
    full = compute_features(frame, lookback=LOOKBACK, merchant_stats=None)
    lean = compute_features(frame, lookback=LOOKBACK, merchant_stats=None, calendar=False)
    assert set(full) == set(ALL_FEATURES)
    assert set(lean) == set(ALL_FEATURES) - set(CALENDAR_FEATURES)
    for name in lean:
        np.testing.assert_array_equal(lean[name], full[name])


def test_it_treats_an_account_without_history_as_new_but_not_unusual():
    features = features_of([item()])
    first = row(features, 0)
    assert first["account_history"] == 0.0
    assert first["new_device"] == first["new_ip"] == first["new_merchant"] == 0.0
    assert first["amount_vs_account"] == 0.0
    assert first["device_share"] == 1.0


def test_it_forgets_history_older_than_the_lookback_window():
    old = item(transaction_id="OLD", timestamp="2024-01-01T10:00:00Z", device_id="D7")
    new = item(transaction_id="NEW", timestamp="2024-03-01T10:00:00Z", device_id="D8")
    features = compute_features(
        frame_from_items([old, new]), lookback=30 * DAY, merchant_stats=None
    )
    assert features["account_history"][1] == 0.0


def test_it_encodes_calendar_parts_with_cosines_for_every_cycle():
    # 2024-03-01 was a Friday.
    features = features_of([item(timestamp="2024-03-01T06:00:00Z")])
    first = row(features, 0)
    assert (first["hour"], first["weekday"], first["month"], first["day"]) == (6.0, 4.0, 3.0, 1.0)
    # The earlier system's day-of-month "cosine" was a sine; day 1 must give cos(0) = 1.
    assert first["day_cos"] == pytest.approx(1.0)
    assert first["day_sin"] == pytest.approx(0.0)
    assert first["hour_cos"] == pytest.approx(math.cos(2 * math.pi * 6 / 24))


def test_it_flags_a_large_share_of_the_funds():
    features = features_of([item(amount="900.00", account_balance="100.00")])
    assert features["amount_to_funds"][0] == pytest.approx(0.9)
    assert features["high_share_of_funds"][0] == 1.0


def test_it_scores_merchant_amounts_against_the_merchant_profile():
    merchants = np.array(["M1"] * 20 + ["M2"] * 20, dtype=object)
    amounts = np.array([10.0] * 10 + [12.0] * 10 + [500.0] * 20)
    stats = MerchantStats.fit(merchants, amounts, np.array([f"AC{i}" for i in range(40)]))
    z = stats.zscore(np.array(["M1", "M2", "UNKNOWN"], dtype=object), np.log1p([500.0] * 3))
    assert z[0] > 10  # 500 at a merchant where people spend 10-12
    assert abs(z[1]) < 1e-9
    assert math.isfinite(z[2])


def test_it_gives_the_same_features_to_the_same_rows_in_any_input_order():
    items = habitual_items(accounts=4, per_account=10, seed=5)
    shuffled = list(reversed(items))
    forward = features_of(items)
    backward = features_of(shuffled)
    n = len(items)
    for i in range(n):
        assert row(forward, i) == pytest.approx(row(backward, n - 1 - i))


@pytest.mark.parametrize("accounts", [3, 10], ids=["small frame", "rows searched for"])
def test_it_gives_the_rows_asked_for_the_very_features_of_a_full_pass(accounts):
    def big_first_spend(transaction_id, account, hours):
        return item(
            transaction_id=transaction_id,
            account_id=f"AC{account:05d}",
            amount="900.00",
            merchant_id="M999",
            timestamp=(START + timedelta(days=20, hours=hours)).isoformat(),
        )

    items = habitual_items(accounts=accounts, per_account=30, seed=9)
    # Big first spends at one merchant by several accounts within hours: the
    # later ones' merchant burst adds up earlier ones that are not asked for.
    items += [big_first_spend(f"BURST{i}", i, i) for i in range(6)]
    # Twice in the same second: neither was used "before" the other.
    items.append(big_first_spend("BURSTTWIN", 2, 2))
    # Each big first spend after the first one adds up the ones before it.
    later_bursts = [i for i, x in enumerate(items) if x.transaction_id.startswith("BURST")][1:]
    # Money in from the same merchant meanwhile: no novelty, so not a source.
    items += [
        item(
            transaction_id=f"REFUND{i}",
            account_id=f"AC{i:05d}",
            amount="900.00",
            merchant_id="M999",
            transaction_type="Credit",
            timestamp=(START + timedelta(days=20, hours=i, minutes=30)).isoformat(),
        )
        for i in range(2)
    ]
    # Small frames are computed whole, larger ones only where asked: both ways.
    assert (len(items) > _SMALL_FRAME) == (accounts == 10)
    frame = frame_from_items(items)
    stats = MerchantStats.fit(frame["merchant_id"], frame["amount"], frame["account_id"])
    # A stored transaction of another account at M999, and one at a merchant
    # the frame has never seen.
    recent = {
        "merchant_id": np.array(["M999", "M777"], dtype=object),
        "ts": frame["ts"][-6:-4] - 60,
        "novelty": np.array([2.5, 4.0]),
    }

    def features(rows=None):
        return compute_features(
            frame, lookback=LOOKBACK, merchant_stats=stats, merchant_recent=recent, rows=rows
        )

    full = features()
    assert (full["merchant_burst"][later_bursts] > 0).all()
    shuffled = np.random.default_rng(1).permutation(len(items))
    for rows in (
        np.arange(len(items) - 3, len(items)),
        slice(50, 90),
        shuffled[:25],
        shuffled,
        np.array([5, 5, 3]),
        np.array([], dtype=np.int64),
    ):
        part = features(rows)
        assert set(part) == set(full)
        for name in full:
            # Online scoring must match what training saw: to the bit, but for
            # the burst's rounding (its running sums skip rows nobody needs).
            if name == "merchant_burst":
                np.testing.assert_allclose(part[name], full[name][rows], rtol=1e-14, atol=0)
            else:
                np.testing.assert_array_equal(part[name], full[name][rows], err_msg=name)


@pytest.mark.parametrize("rows", [None, slice(-900, None)], ids=["every row", "some rows"])
def test_it_computes_a_large_frame_in_two_threads_to_the_bit_as_in_one(rows, monkeypatch):
    frame = frame_from_items(habitual_items(accounts=150, per_account=30, seed=5))
    assert len(frame["ts"]) >= _PARALLEL_FROM
    stats = MerchantStats.fit(frame["merchant_id"], frame["amount"], frame["account_id"])

    def features():
        return compute_features(frame, lookback=LOOKBACK, merchant_stats=stats, rows=rows)

    both_threads = features()
    assert any(thread.name.startswith("feature-pairs") for thread in threading.enumerate())
    monkeypatch.setattr(features_module, "_PARALLEL_FROM", len(frame["ts"]) + 1)
    one_thread = features()
    assert both_threads["merchant_share"].std() > 0
    for name in one_thread:
        np.testing.assert_array_equal(both_threads[name], one_thread[name], err_msg=name)


@pytest.mark.parametrize("rows", [None, slice(300, None)], ids=["every row", "some rows"])
@pytest.mark.parametrize(
    "spread",
    # Codes into a vocabulary are paired with the account's as they are while
    # the packed sort key has room for them; wider ones are renumbered.
    [1, 1 << 26],
    ids=["packable codes", "codes too wide to pack"],
)
def test_it_gives_the_same_features_for_text_columns_given_as_codes(rows, spread):
    frame = frame_from_items(habitual_items(accounts=12, per_account=30, seed=4))
    stats = MerchantStats.fit(frame["merchant_id"], frame["amount"], frame["account_id"])
    recent = {
        "merchant_id": frame["merchant_id"][:2].copy(),
        "ts": frame["ts"][:2] - 60,
        "novelty": np.array([2.5, 4.0]),
    }
    coded, vocabularies = dict(frame), {}
    rng = np.random.default_rng(3)
    for name in ("account_id", "location", "device_id", "ip_address", "merchant_id"):
        # A vocabulary as a worker's copy has it: in its own order, holding
        # texts this frame does not use.
        texts = list(dict.fromkeys(frame[name]))
        texts = [texts[i] for i in rng.permutation(len(texts))] + ["UNUSED1", "UNUSED2"]
        vocabularies[name] = texts[::-1]
        position = {text: i for i, text in enumerate(vocabularies[name])}
        coded[name] = np.array([position[text] for text in frame[name]], dtype=np.int64)
        if name in ("location", "device_id", "ip_address"):
            # Only the merchants' texts are ever looked up: these codes may
            # stand for a vocabulary of any size.
            coded[name] *= spread

    def features(columns, **extra):
        return compute_features(
            columns,
            lookback=LOOKBACK,
            merchant_stats=stats,
            merchant_recent=recent,
            rows=rows,
            **extra,
        )

    texts, codes = features(frame), features(coded, vocabularies=vocabularies)
    assert texts["merchant_amount_z"].std() > 0
    for name in texts:
        np.testing.assert_array_equal(codes[name], texts[name], err_msg=name)


def test_it_counts_other_accounts_big_first_spends_at_the_merchant():
    def spender(n, account, when, amount):
        return [
            item(
                transaction_id=f"{account}-{i}",
                account_id=account,
                amount="20.00",
                merchant_id="M001",
                timestamp=f"2024-03-0{i + 1}T10:00:00Z",
            )
            for i in range(3)
        ] + [
            item(
                transaction_id=f"{account}-X",
                account_id=account,
                amount=amount,
                merchant_id="M666",
                timestamp=when,
            )
        ]

    items = spender(1, "AC1", "2024-03-05T10:00:00Z", "200.00") + spender(
        2, "AC2", "2024-03-05T12:00:00Z", "200.00"
    )
    full = features_of(items)
    first, second = 3, 7
    # The past amounts never varied: their spread is floored at 0.25 log units.
    assert full["merchant_novelty"][first] == pytest.approx(
        (math.log1p(200) - math.log1p(20)) / 0.25
    )
    assert full["merchant_burst"][first] == 0.0
    assert full["merchant_burst"][second] == pytest.approx(
        math.log1p(full["merchant_novelty"][first])
    )
    # Serving sees AC1's transaction only as a stored (merchant, time, novelty) row.
    frame = frame_from_items(items[4:])
    recent = {
        "merchant_id": np.array(["M666"], dtype=object),
        "ts": np.array([frame_from_items([items[first]])["ts"][0]]),
        "novelty": np.array([full["merchant_novelty"][first]]),
    }
    served = compute_features(frame, lookback=LOOKBACK, merchant_stats=None, merchant_recent=recent)
    assert served["merchant_burst"][3] == pytest.approx(full["merchant_burst"][second])


def _merchant_prices():
    """Accounts paying about 20 at cheap M001 and 100 at dear M002, whatever
    their own level (AC2 spends twice what AC1 does)."""
    rows = []
    for account, level in (("AC1", 1.0), ("AC2", 2.0)):
        for day in range(1, 21):
            for merchant, price in (("M001", 20.0), ("M002", 100.0)):
                rows.append((account, merchant, price * level * (1 + 0.01 * (day % 3))))
    accounts, merchants, amounts = (np.array(column) for column in zip(*rows, strict=True))
    return MerchantStats.fit(merchants.astype(object), amounts, accounts.astype(object))


def test_it_learns_each_merchants_price_level_against_its_customers_own_amounts():
    stats = _merchant_prices()
    _, _, offsets = stats.of(["M001", "M002", "NEW"])
    # Half-way between log 20 and log 100 is each account's usual; shrunk a little.
    assert offsets[0] == pytest.approx(-math.log(5) / 2, rel=0.15)
    assert offsets[1] == pytest.approx(math.log(5) / 2, rel=0.15)
    assert offsets[2] == 0.0
    assert stats.fingerprint and stats.fingerprint != _merchant_prices().fingerprint


def test_it_judges_an_amount_against_what_the_account_pays_at_merchants_of_that_price():
    history = [
        item(
            transaction_id=f"H{i}",
            merchant_id=("M001", "M002")[i % 2],
            amount=("20.00", "100.00")[i % 2],
            timestamp=f"2024-03-{i + 1:02d}T10:00:00Z",
        )
        for i in range(12)
    ]
    dear = item(transaction_id="X", merchant_id="M002", amount="100.00", timestamp="2024-03-20")
    cheap = item(transaction_id="X", merchant_id="M001", amount="100.00", timestamp="2024-03-20")
    stats = _merchant_prices()

    def z(last):
        features = compute_features(
            frame_from_items([*history, last]), lookback=LOOKBACK, merchant_stats=stats
        )
        return features["amount_z_account"][-1]

    # 100 is this account's usual at the dear merchant, five times it at the cheap one.
    assert abs(z(dear)) < 1.0
    assert z(cheap) > 3.0
    # Without a merchant profile both are the same amount against the same history.
    plain = [
        compute_features(frame_from_items([*history, last]), lookback=LOOKBACK, merchant_stats=None)
        for last in (dear, cheap)
    ]
    assert plain[0]["amount_z_account"][-1] == plain[1]["amount_z_account"][-1]


def test_it_names_debits_as_the_transaction_model_does():
    assert TransactionType.DEBIT.value == DEBIT


def test_it_sees_no_merchant_novelty_in_money_coming_in():
    history = [
        item(transaction_id=f"H{i}", amount="20.00", timestamp=f"2024-03-0{i + 1}T10:00:00Z")
        for i in range(5)
    ]
    first_seen = {"merchant_id": "M999", "amount": "900.00", "timestamp": "2024-03-08"}
    debit = item(transaction_id="D", transaction_type="Debit", **first_seen)
    credit = item(transaction_id="C", transaction_type="Credit", **first_seen)
    assert features_of([*history, debit])["merchant_novelty"][-1] > 5
    assert features_of([*history, credit])["merchant_novelty"][-1] == 0.0


@pytest.mark.parametrize(
    "widest_group",
    # Group codes that leave room in one int64 for the time and the row, and
    # codes too wide for that, which take a stable argsort instead.
    [50, 1 << 28],
    ids=["packed", "too wide to pack"],
)
@pytest.mark.parametrize(
    "arrival",
    # As a bulk read gives rows (quicksort), and as an online batch's frame
    # does: history in (group, time) order, then the batch (timsort).
    ["shuffled", "history then batch"],
)
def test_it_orders_rows_by_group_then_time_then_row(widest_group, arrival):
    rng = np.random.default_rng(7)
    n = 5000
    # Many ties: few groups and seconds, so the row order decides among them.
    group = rng.integers(0, 50, n) * (widest_group // 50)
    ts = 1_700_000_000 + rng.integers(0, 40, n) * 864_000
    if arrival == "history then batch":
        history = np.lexsort((ts[:-500], group[:-500]))
        group[:-500], ts[:-500] = group[:-500][history], ts[:-500][history]
    order, key = _group_time_order(group, ts)
    np.testing.assert_array_equal(order, np.lexsort((np.arange(n), ts, group)))
    np.testing.assert_array_equal(key, np.sort(key))
