"""The synthetic generator: format, determinism, consistency and fraud realism.

Most checks read one generated data set (a few hundred accounts, fraud at 3 %
so every scenario has enough rows) the way a consumer would: from the CSV.
"""

from __future__ import annotations

import csv
import ipaddress
import math
import re
import shutil
import tracemalloc
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from detection.synthetic import (
    ROWS_PER_ACCOUNT_MONTH,
    SCENARIOS,
    GenerationError,
    generate,
)

PUBLIC_HEADER = (
    "TransactionID,AccountID,TransactionAmount,TransactionDate,TransactionType,Location,"
    "DeviceID,IP Address,MerchantID,Channel,CustomerAge,CustomerOccupation,"
    "TransactionDuration,LoginAttempts,AccountBalance,PreviousTransactionDate"
)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
START = date(2024, 1, 1)
MONTHS = 4
FRAUD_RATE = 0.03


@dataclass
class Row:
    """One transaction with what the account had done before it."""

    id: str
    account: str
    cents: int
    at: datetime
    debit: bool
    location: str
    device: str
    ip: str
    merchant: str
    channel: str
    age: str
    occupation: str
    duration: int
    login: int
    balance_cents: int
    previous: str
    is_fraud: bool
    scenario: str
    raw: dict[str, str]
    seen_devices: frozenset[str] = frozenset()
    seen_ips: frozenset[str] = frozenset()
    seen_merchants: frozenset[str] = frozenset()
    seen_locations: frozenset[str] = frozenset()
    history: int = 0
    home: str = ""
    normal_debit_median: float = 0.0

    @property
    def balance_before(self) -> int:
        return self.balance_cents + (self.cents if self.debit else -self.cents)


@dataclass
class Generated:
    folder: Path
    summary: object
    rows: list[Row]
    lines: list[str]
    label_lines: list[str]

    @property
    def typical(self) -> dict[str, float]:
        """Each account's median normal debit (cents) over the whole file."""
        debits: dict[str, list[int]] = defaultdict(list)
        for row in self.rows:
            if row.debit and not row.is_fraud:
                debits[row.account].append(row.cents)
        return {account: _median(cents) for account, cents in debits.items()}

    def scenario(self, name: str) -> list[Row]:
        return [row for row in self.rows if row.scenario == name]

    def account(self, account: str) -> list[Row]:
        return [row for row in self.rows if row.account == account]


def _cents(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int(frac)


def _median(values: list[int]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _read(out: Path, labels: Path) -> tuple[list[Row], list[str], list[str]]:
    lines = out.read_text(encoding="utf-8").splitlines()
    label_lines = labels.read_text(encoding="utf-8").splitlines()
    with labels.open(newline="", encoding="utf-8") as handle:
        label_of = {r["transaction_id"]: r for r in csv.DictReader(handle)}
    rows: list[Row] = []
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    history: Counter[str] = Counter()
    locations: dict[str, Counter[str]] = defaultdict(Counter)
    debits: dict[str, list[int]] = defaultdict(list)
    with out.open(newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            label = label_of[raw["TransactionID"]]
            account = raw["AccountID"]
            row = Row(
                id=raw["TransactionID"],
                account=account,
                cents=_cents(raw["TransactionAmount"]),
                at=datetime.fromisoformat(raw["TransactionDate"]),
                debit=raw["TransactionType"] == "Debit",
                location=raw["Location"],
                device=raw["DeviceID"],
                ip=raw["IP Address"],
                merchant=raw["MerchantID"],
                channel=raw["Channel"],
                age=raw["CustomerAge"],
                occupation=raw["CustomerOccupation"],
                duration=int(raw["TransactionDuration"]),
                login=int(raw["LoginAttempts"]),
                balance_cents=_cents(raw["AccountBalance"]),
                previous=raw["PreviousTransactionDate"],
                is_fraud=label["is_fraud"] == "1",
                scenario=label["scenario"],
                raw=raw,
                seen_devices=frozenset(seen[account]["device"]),
                seen_ips=frozenset(seen[account]["ip"]),
                seen_merchants=frozenset(seen[account]["merchant"]),
                seen_locations=frozenset(seen[account]["location"]),
                history=history[account],
                home=locations[account].most_common(1)[0][0] if locations[account] else "",
                normal_debit_median=_median(debits[account]),
            )
            rows.append(row)
            history[account] += 1
            for key in ("device", "ip", "merchant", "location"):
                seen[account][key].add(getattr(row, key))
            if not row.is_fraud:
                locations[account][row.location] += 1
                if row.debit:
                    debits[account].append(row.cents)
    return rows, lines, label_lines


def _generate(folder: Path, **options) -> object:
    defaults = {"accounts": 30, "months": 2, "seed": 1, "fraud_rate": 0.02, "start": START}
    return generate(out=folder / "tx.csv", labels=folder / "labels.csv", **defaults | options)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Generated:
    folder = tmp_path_factory.mktemp("synthetic")
    summary = generate(
        out=folder / "tx.csv",
        labels=folder / "labels.csv",
        accounts=300,
        months=MONTHS,
        seed=11,
        fraud_rate=FRAUD_RATE,
        start=START,
    )
    rows, lines, label_lines = _read(folder / "tx.csv", folder / "labels.csv")
    return Generated(folder, summary, rows, lines, label_lines)


def _bursts(rows: list[Row], gap: timedelta) -> list[list[Row]]:
    """Group one scenario's rows into events: same account, close in time."""
    by_account: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_account[row.account].append(row)
    bursts = []
    for account_rows in by_account.values():
        current = [account_rows[0]]
        for row in account_rows[1:]:
            if row.at - current[-1].at <= gap:
                current.append(row)
            else:
                bursts.append(current)
                current = [row]
        bursts.append(current)
    return bursts


def _hour_distance(a: float, b: float) -> float:
    return min(abs(a - b), 24 - abs(a - b))


# ------------------------------------------------------------ format


def test_it_writes_exactly_the_public_header(data, public_data):
    assert data.lines[0] == PUBLIC_HEADER
    with public_data.open(encoding="utf-8") as handle:
        assert data.lines[0] == handle.readline().rstrip("\r\n")


def test_it_writes_a_labels_header_and_one_label_per_transaction_in_order(data):
    assert data.label_lines[0] == "transaction_id,is_fraud,scenario"
    tx_ids = [line.split(",", 1)[0] for line in data.lines[1:]]
    label_ids = [line.split(",", 1)[0] for line in data.label_lines[1:]]
    assert tx_ids == label_ids
    assert len(set(tx_ids)) == len(tx_ids) == data.summary.rows


def test_it_keeps_every_value_in_the_public_ranges_and_formats(data):
    patterns = {
        "TransactionID": r"TX\d{8}",
        "AccountID": r"AC\d{5,}",
        "TransactionAmount": r"\d+\.\d\d",
        "TransactionDate": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
        "TransactionType": r"Credit|Debit",
        "DeviceID": r"D\d{6}",
        "MerchantID": r"M\d{3}",
        "Channel": r"Online|ATM|Branch",
        "CustomerOccupation": r"Doctor|Student|Retired|Engineer|Other",
        "AccountBalance": r"\d+\.\d\d",
        "PreviousTransactionDate": r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)?",
    }
    for row in data.rows:
        for column, pattern in patterns.items():
            assert re.fullmatch(pattern, row.raw[column]), (column, row.raw[column])
        assert ipaddress.IPv4Address(row.ip).is_global, row.ip
        assert re.fullmatch(r"[A-Z][a-z]+( [A-Z][a-z]+)*", row.location)
        assert 0 <= row.cents <= 100_000_000
        assert 18 <= int(row.age) <= 120
        assert 0 <= row.duration <= 10_000
        assert 0 <= row.login <= 10
        assert 0 <= row.balance_cents <= 1_000_000_000
        assert START <= row.at.date() < date(2024, 5, 1)
    assert 30 <= len({row.location for row in data.rows}) <= 43
    assert 80 <= len({row.merchant for row in data.rows}) <= 150


def test_it_writes_rows_in_time_order_numbered_in_that_order(data):
    times = [row.at for row in data.rows]
    assert times == sorted(times)
    assert [row.id for row in data.rows] == [f"TX{i:08d}" for i in range(1, len(data.rows) + 1)]


# ------------------------------------------------------------ determinism


def test_it_writes_byte_identical_files_for_the_same_seed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _generate(tmp_path / "a", seed=5)
    _generate(tmp_path / "b", seed=5)
    for name in ("tx.csv", "labels.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_it_writes_different_data_for_another_seed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _generate(tmp_path / "a", seed=5)
    _generate(tmp_path / "b", seed=6)
    first = (tmp_path / "a" / "tx.csv").read_text().splitlines()
    second = (tmp_path / "b" / "tx.csv").read_text().splitlines()
    assert first[0] == second[0]
    differing = sum(a != b for a, b in zip(first[1:], second[1:], strict=False))
    assert differing > 0.9 * min(len(first), len(second))


def test_it_reproduces_the_shipped_sample_with_the_documented_command(tmp_path):
    summary = generate(
        out=tmp_path / "tx.csv",
        labels=tmp_path / "labels.csv",
        accounts=120,
        months=4,
        seed=7,
        fraud_rate=0.01,
        start=START,
    )
    assert (tmp_path / "tx.csv").read_bytes() == (FIXTURES / "sample_transactions.csv").read_bytes()
    assert (tmp_path / "labels.csv").read_bytes() == (FIXTURES / "sample_labels.csv").read_bytes()
    assert 4_000 <= summary.rows <= 6_000


# ------------------------------------------------------------ labels


def test_it_injects_fraud_at_the_requested_rate(data):
    frauds = [row for row in data.rows if row.is_fraud]
    assert abs(len(frauds) / len(data.rows) - FRAUD_RATE) < 0.004
    assert Counter(row.scenario for row in frauds) == {
        name: count for name, count in data.summary.fraud_rows.items() if count
    }
    assert data.summary.rows == len(data.rows)


def test_it_uses_every_documented_scenario_and_leaves_normal_rows_blank(data):
    assert {row.scenario for row in data.rows if row.is_fraud} == set(SCENARIOS)
    assert all(row.scenario == "" for row in data.rows if not row.is_fraud)
    assert {line.rsplit(",", 2)[1] for line in data.label_lines[1:]} == {"0", "1"}
    # Each scenario gets a real share of the fraud rows, not a token one.
    counts = Counter(row.scenario for row in data.rows if row.is_fraud)
    assert min(counts.values()) >= 0.1 * sum(counts.values())


def test_it_writes_no_fraud_when_the_rate_is_zero(tmp_path):
    summary = _generate(tmp_path, fraud_rate=0.0)
    assert summary.fraud_total == 0
    assert all(line.endswith(",0,") for line in (tmp_path / "labels.csv").read_text().split()[1:])


# ------------------------------------------------------------ accounts


def test_it_keeps_balances_consistent_with_each_accounts_debits_and_credits(data):
    last: dict[str, int] = {}
    for row in data.rows:
        if row.account in last:
            assert row.balance_before == last[row.account], row.id
        if row.debit:
            assert row.cents <= row.balance_before, row.id
        last[row.account] = row.balance_cents


def test_it_links_each_row_to_its_accounts_previous_transaction(data):
    last: dict[str, str] = {}
    for row in data.rows:
        assert row.previous == last.get(row.account, ""), row.id
        last[row.account] = row.raw["TransactionDate"]


def test_it_keeps_each_customers_age_and_occupation(data):
    people = defaultdict(set)
    for row in data.rows:
        people[row.account].add((row.age, row.occupation))
    assert all(len(person) == 1 for person in people.values())
    ages = {int(age) for person in people.values() for age, occupation in person}
    assert min(ages) < 30 and max(ages) > 60


def test_it_pays_each_account_a_regular_income(data):
    credits: dict[str, Counter[str]] = defaultdict(Counter)
    for row in data.rows:
        if not row.debit:
            credits[row.account][row.merchant] += 1
    salaried = [c.most_common(1)[0][1] >= MONTHS for c in credits.values()]
    assert len(salaried) == len({row.account for row in data.rows})
    assert all(salaried)


def test_it_gives_accounts_distinct_habits(data):
    # Per-account medians spread over two orders of magnitude, and most of an
    # account's activity goes through few devices and merchants.
    medians = data.typical.values()
    assert min(medians) < 2_000 and max(medians) > 30_000  # cents
    top_merchant_share = []
    for account in {row.account for row in data.rows}:
        merchants = Counter(row.merchant for row in data.account(account) if not row.is_fraud)
        top_merchant_share.append(merchants.most_common(1)[0][1] / merchants.total())
    assert _median(top_merchant_share) > 0.25


def test_it_mixes_in_benign_novelty_so_detectors_meet_honest_false_positives(data):
    settled = [row for row in data.rows if not row.is_fraud and row.history >= 10]
    share = {
        "merchant": sum(row.merchant not in row.seen_merchants for row in settled),
        "device": sum(row.device not in row.seen_devices for row in settled),
        "location": sum(row.location not in row.seen_locations for row in settled),
        "big": sum(row.debit and row.cents > 5 * row.normal_debit_median for row in settled),
    }
    share = {key: count / len(settled) for key, count in share.items()}
    assert 0.02 <= share["merchant"] <= 0.08
    assert 0.002 <= share["device"] <= 0.02
    assert 0.002 <= share["location"] <= 0.03
    assert 0.002 <= share["big"] <= 0.03


def test_it_estimates_the_row_count_it_documents(data):
    per_account_month = data.summary.rows / (300 * MONTHS)
    assert abs(per_account_month / ROWS_PER_ACCOUNT_MONTH - 1) < 0.12


# ------------------------------------------------------------ fraud scenarios


def test_it_injects_fraud_only_into_accounts_with_two_weeks_of_history(data):
    frauds = [row for row in data.rows if row.is_fraud]
    assert all(row.at >= datetime(2024, 1, 15) for row in frauds)
    assert all(row.history >= 8 for row in frauds)


def test_it_takes_over_accounts_from_a_new_device_address_and_usually_city(data):
    rows = data.scenario("account_takeover")
    typical = data.typical
    assert len(rows) >= 20
    for row in rows:
        assert row.device not in row.seen_devices
        assert row.ip not in row.seen_ips
        assert 3 <= row.login <= 6
        assert row.channel == "Online" and row.debit
        # 5 to 20 times the usual amount, unless the thief took most of what was there.
        assert row.cents >= 4 * typical[row.account] or row.cents >= 0.8 * row.balance_before, (
            row.id
        )
    assert sum(row.location != row.home for row in rows) >= 0.6 * len(rows)
    unusual_hour = 0
    for row in rows:
        hours = [r.at.hour for r in data.account(row.account) if not r.is_fraud]
        near = sum(_hour_distance(h, row.at.hour) <= 1 for h in hours)
        unusual_hour += near / len(hours) < 0.05
    assert unusual_hour >= 0.5 * len(rows)


def test_it_tests_cards_with_bursts_of_tiny_amounts_at_new_merchants(data):
    bursts = _bursts(data.scenario("card_testing"), timedelta(minutes=5))
    assert len(bursts) >= 3
    for burst in bursts:
        assert 3 <= len(burst) <= 8
        assert burst[-1].at - burst[0].at <= timedelta(minutes=15)
        before = burst[0].seen_merchants
        for row in burst:
            assert 50 <= row.cents <= 500
            assert row.merchant not in before
            assert row.channel == "Online" and row.debit
            assert row.duration < 30
    new_device = sum(burst[0].device not in burst[0].seen_devices for burst in bursts)
    assert new_device >= 0.4 * len(bursts)


def test_it_drains_most_of_the_balance_from_a_new_place(data):
    rows = data.scenario("balance_drain")
    assert len(rows) >= 20
    for row in rows:
        assert row.debit and row.channel in ("ATM", "Online")
        assert row.cents >= 0.8 * row.balance_before, row.id
        assert row.location not in row.seen_locations
    assert sum(row.at.hour < 6 for row in rows) >= 0.5 * len(rows)


def test_it_runs_velocity_sprees_at_new_merchants_from_a_known_device(data):
    bursts = _bursts(data.scenario("velocity_spree"), timedelta(hours=2))
    typical = data.typical
    assert len(bursts) >= 3
    for burst in bursts:
        assert 4 <= len(burst) <= 10
        assert burst[-1].at - burst[0].at <= timedelta(hours=2)
        first = burst[0]
        assert first.ip not in first.seen_ips
        assert len({row.ip for row in burst}) == 1
        for row in burst:
            assert row.merchant not in first.seen_merchants
            assert row.device in first.seen_devices
            assert (
                row.cents >= 1.5 * typical[row.account] or row.cents >= 0.8 * row.balance_before
            ), row.id


def test_it_compromises_one_merchant_for_several_accounts(data):
    rows = data.scenario("merchant_fraud")
    assert len(rows) >= 20
    usual: dict[str, list[int]] = defaultdict(list)
    for row in data.rows:
        if not row.is_fraud and row.debit:
            usual[row.merchant].append(row.cents)
    events = defaultdict(list)
    for row in rows:
        events[row.merchant].append(row)
        # Normal-looking: the account's own device, address and city.
        assert row.merchant not in row.seen_merchants
        assert row.device in row.seen_devices and row.ip in row.seen_ips
        assert row.location == row.home and row.login == 1
    assert all(len({row.account for row in group}) >= 2 for group in events.values())
    above = [row.cents > 2 * _median(usual[row.merchant]) for row in rows if usual[row.merchant]]
    assert sum(above) >= 0.8 * len(above)


# ------------------------------------------------------------ streaming, errors


def _traced_peak(folder: Path, months: int) -> tuple[int, int]:
    folder.mkdir()
    tracemalloc.start()
    try:
        summary = _generate(folder, accounts=1_000, months=months, fraud_rate=0.01)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return summary.rows, peak


def test_it_streams_rows_to_disk_in_flat_memory(tmp_path):
    small_rows, small_peak = _traced_peak(tmp_path / "small", months=1)
    rows, peak = _traced_peak(tmp_path / "big", months=6)
    assert rows >= 60_000 and rows > 5 * small_rows
    size = (tmp_path / "big" / "tx.csv").stat().st_size
    # Six times the rows cost (almost) no more memory, and far less than the
    # text written: nothing grows with the row count.
    assert peak < small_peak + 2 * 2**20, (small_peak, peak)
    assert peak < 8 * 2**20 < size, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"accounts": -1}, "accounts must be"),
        ({"accounts": 0}, "accounts must be"),
        ({"months": -3}, "months must be"),
        ({"fraud_rate": 0.6}, "fraud rate must be"),
        ({"fraud_rate": -0.01}, "fraud rate must be"),
        ({"fraud_rate": float("nan")}, "fraud rate must be"),
        ({"seed": -1}, "seed must be"),
        ({"start": date(9999, 12, 1)}, "past the year 9999"),
    ],
)
def test_it_refuses_bad_arguments_and_writes_nothing(tmp_path, options, message):
    with pytest.raises(GenerationError, match=message):
        _generate(tmp_path, **options)
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_a_destination_it_cannot_write(tmp_path):
    with pytest.raises(GenerationError, match="no such directory"):
        generate(
            out=tmp_path / "tx.csv",
            labels=tmp_path / "missing" / "labels.csv",
            accounts=5,
            months=1,
            seed=1,
            fraud_rate=0.01,
        )
    with pytest.raises(GenerationError, match="is a directory"):
        generate(out=tmp_path, accounts=5, months=1, seed=1)
    assert list(tmp_path.iterdir()) == []


def test_it_replaces_files_whole_and_leaves_no_partial_file(tmp_path):
    _generate(tmp_path, seed=1)
    _generate(tmp_path, seed=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "tx.csv"]
    (tmp_path / "fresh").mkdir()
    _generate(tmp_path / "fresh", seed=2)
    assert (tmp_path / "tx.csv").read_bytes() == (tmp_path / "fresh" / "tx.csv").read_bytes()
    shutil.rmtree(tmp_path / "fresh")
