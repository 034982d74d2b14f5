"""Synthetic bank transactions with injected, labelled fraud.

The public data set has 2,512 rows and no labels, so the detectors can be
neither trained at scale nor measured on it. This module writes files in its
exact CSV format, plus a labels file naming every injected fraud, from a
population of accounts that each behave consistently (home city, devices,
favourite merchants, amounts, hours, channels, salary) with honest benign
novelty (travel, new merchants, a new phone, big purchases) so that detectors
face realistic false positives. docs/generator.md describes the behaviour and
each fraud scenario.

Rows are produced window by window (a few days of all accounts at once,
vectorised with numpy), settled against each account's balance, sorted and
appended to disk, so memory stays flat however many rows are written. Every
random draw comes from a ``SeedSequence`` of the seed: one child for the
account profiles, one for the fraud plan, one per window, so the same
arguments always give byte-identical files.

Row count: about ``ROWS_PER_ACCOUNT_MONTH`` (≈ 11.1) rows per account per month,
so 1,000,000 rows is roughly ``accounts=7500, months=12``.
"""

from __future__ import annotations

import calendar
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

HEADER = (
    "TransactionID",
    "AccountID",
    "TransactionAmount",
    "TransactionDate",
    "TransactionType",
    "Location",
    "DeviceID",
    "IP Address",
    "MerchantID",
    "Channel",
    "CustomerAge",
    "CustomerOccupation",
    "TransactionDuration",
    "LoginAttempts",
    "AccountBalance",
    "PreviousTransactionDate",
)
LABEL_HEADER = ("transaction_id", "is_fraud", "scenario")
SCENARIOS = (
    "account_takeover",
    "card_testing",
    "balance_drain",
    "velocity_spree",
    "merchant_fraud",
)
CHANNELS = ("Online", "ATM", "Branch")
OCCUPATIONS = ("Doctor", "Student", "Retired", "Engineer", "Other")
# The cities of the public data set, with rough populations (thousands) so
# big cities are home to more accounts and attract more travel.
CITY_POPULATION = {
    "New York": 8300,
    "Los Angeles": 3900,
    "Chicago": 2700,
    "Houston": 2300,
    "Phoenix": 1600,
    "Philadelphia": 1600,
    "San Antonio": 1450,
    "San Diego": 1380,
    "Dallas": 1300,
    "San Jose": 1000,
    "Austin": 960,
    "Jacksonville": 950,
    "Fort Worth": 920,
    "Columbus": 900,
    "Indianapolis": 880,
    "Charlotte": 870,
    "San Francisco": 810,
    "Seattle": 740,
    "Denver": 710,
    "Washington": 690,
    "Nashville": 690,
    "Oklahoma City": 680,
    "El Paso": 680,
    "Boston": 650,
    "Portland": 640,
    "Las Vegas": 640,
    "Detroit": 630,
    "Memphis": 630,
    "Louisville": 620,
    "Baltimore": 580,
    "Milwaukee": 570,
    "Albuquerque": 560,
    "Tucson": 540,
    "Fresno": 540,
    "Sacramento": 520,
    "Kansas City": 510,
    "Mesa": 500,
    "Atlanta": 500,
    "Colorado Springs": 480,
    "Omaha": 480,
    "Raleigh": 470,
    "Virginia Beach": 460,
    "Miami": 440,
}
CITIES = tuple(CITY_POPULATION)
N_MERCHANTS = 120
N_DEVICE_IDS = 1_000_000

AMOUNT_MAX_CENTS = 100_000_000
BALANCE_MAX_CENTS = 1_000_000_000
MAX_ACCOUNTS = 500_000
MAX_MONTHS = 1200
FRAUD_RATE_MAX = 0.5
# Measured over several seeds; used for progress bars and sizing, not promised.
ROWS_PER_ACCOUNT_MONTH = 11.1

# Benign novelty, per everyday row: the honest false positives.
NEW_MERCHANT_P = 0.03
NEW_DEVICE_P = 0.005
NEW_IP_P = 0.02
BIG_PURCHASE_P = 0.005
TRIP_PER_MONTH_P = 0.12
# Fraud only hits accounts with this much history, so "unusual" has a meaning.
FRAUD_MIN_DAYS = 14
FRAUD_MIN_HISTORY = 8
FRAUD_MIN_HISTORY_SMALL_RUN = 3
# Scenario sizes in rows (merchant_fraud: accounts hit at one merchant).
_SIZES = {
    "account_takeover": (1, 1),
    "card_testing": (3, 8),
    "balance_drain": (1, 1),
    "velocity_spree": (4, 10),
    "merchant_fraud": (3, 8),
}
# Kept near this many rows per window: bigger windows vectorise better,
# smaller ones keep memory low for very many accounts.
_WINDOW_TARGET_ROWS = 20_000
_WINDOW_MAX_DAYS = 7
_FORMAT_ROWS = 2048
_DAY = 86_400

ProgressCallback = Callable[[int, int], None]
"""Called after each written chunk with (rows written so far, expected total)."""


class GenerationError(ValueError):
    """Bad arguments or an unwritable destination; nothing was written."""


@dataclass(frozen=True)
class GenerationSummary:
    rows: int
    fraud_rows: dict[str, int]
    accounts: int
    months: int
    seed: int
    fraud_rate: float
    start: date
    end: date
    out: Path
    labels: Path
    declined: int = 0

    @property
    def fraud_total(self) -> int:
        return sum(self.fraud_rows.values())


def default_labels_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_labels.csv")


def estimate_rows(accounts: int, months: int) -> int:
    return round(accounts * months * ROWS_PER_ACCOUNT_MONTH)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (Jan 31 → Feb 29)."""
    year, month0 = divmod(day.month - 1 + months, 12)
    year += day.year
    if not 1 <= year <= 9999:
        raise ValueError(f"year {year} is out of range")
    return date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


# ---------------------------------------------------------------- accounts


@dataclass
class _Profiles:
    """Per-account habits, one array entry per account."""

    home: np.ndarray
    age: np.ndarray
    occupation: np.ndarray
    devices: np.ndarray  # (A, 3), padded with the primary device
    device_cum: np.ndarray
    ips: np.ndarray  # (A, 3) uint32 as int64
    ip_cum: np.ndarray
    favourites: np.ndarray  # (A, 8), padded
    favourite_cum: np.ndarray
    typical: np.ndarray  # median amount in dollars
    price_scale: np.ndarray
    merchant_usual: np.ndarray  # (N_MERCHANTS,) median amount its regular customers pay
    amount_sigma: np.ndarray
    peak_hour: np.ndarray
    hour_sigma: np.ndarray
    channel_cum: np.ndarray  # (A, 3)
    rate: np.ndarray  # everyday transactions per day
    credit_share: np.ndarray
    duration_median: np.ndarray
    employer: np.ndarray
    biweekly: np.ndarray
    payday: np.ndarray  # monthly: day of month 1..28; biweekly: offset of the first pay
    pay_second: np.ndarray
    pay_cents: np.ndarray
    start_balance: np.ndarray


@dataclass
class _World:
    merchant_popularity: np.ndarray
    merchant_price: np.ndarray
    city_weights: np.ndarray


def _world(rng: np.random.Generator) -> _World:
    popularity = 1.0 / np.arange(1, N_MERCHANTS + 1) ** 0.8
    popularity = rng.permutation(popularity)
    price = np.clip(rng.lognormal(0.0, 0.45, N_MERCHANTS), 0.4, 3.0)
    weights = np.array(list(CITY_POPULATION.values()), dtype=float)
    return _World(popularity / popularity.sum(), price, weights / weights.sum())


# Global unicast first octets: no private, shared, loopback, link-local,
# documentation or multicast space, so every address passes as a real one.
_IP_FIRST_OCTETS = np.array(
    [o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192, 198, 203)]
)


def _random_ips(rng: np.random.Generator, n: int) -> np.ndarray:
    first = _IP_FIRST_OCTETS[rng.integers(0, _IP_FIRST_OCTETS.size, n)]
    rest = rng.integers(0, 1 << 16, n) << 8 | rng.integers(1, 255, n)
    return (first.astype(np.int64) << 24) | rest


def _preference_cum(rng: np.random.Generator, counts: np.ndarray, width: int, decay: float):
    """Cumulative choice weights over `counts[i]` slots, the first favoured."""
    ranks = np.arange(1, width + 1, dtype=float)
    weights = ranks[None, :] ** -(decay * rng.uniform(0.7, 1.4, (counts.size, 1)))
    weights[ranks[None, :] > counts[:, None]] = 0.0
    cum = np.cumsum(weights, axis=1)
    cum /= cum[:, -1:]
    # Exact 1.0 at and after the last real slot, so a draw in [0, 1) never
    # lands on padding.
    cum[ranks[None, :] >= counts[:, None]] = 1.0
    return cum


def _profiles(rng: np.random.Generator, world: _World, accounts: int) -> _Profiles:
    a = accounts
    home = rng.choice(len(CITIES), size=a, p=world.city_weights)
    occupation = rng.choice(len(OCCUPATIONS), size=a, p=[0.2, 0.21, 0.2, 0.22, 0.17])
    age = np.where(
        occupation == 1,
        rng.integers(18, 28, a),
        np.where(occupation == 2, rng.integers(60, 91, a), rng.integers(24, 66, a)),
    )

    n_devices = rng.choice([1, 2, 3], size=a, p=[0.45, 0.4, 0.15])
    devices = rng.integers(0, N_DEVICE_IDS, (a, 3))
    devices[:, 1:] = np.where(np.arange(1, 3) < n_devices[:, None], devices[:, 1:], devices[:, :1])
    n_ips = rng.choice([1, 2, 3], size=a, p=[0.4, 0.4, 0.2])
    ips = _random_ips(rng, a * 3).reshape(a, 3)
    ips[:, 1:] = np.where(np.arange(1, 3) < n_ips[:, None], ips[:, 1:], ips[:, :1])

    # Favourite merchants: popularity-weighted sampling without replacement
    # (Gumbel top-k), in chunks so very many accounts stay cheap.
    n_fav = rng.integers(3, 9, a)
    favourites = np.empty((a, 8), dtype=np.int64)
    log_pop = np.log(world.merchant_popularity)
    for lo in range(0, a, 1024):
        hi = min(a, lo + 1024)
        keys = log_pop[None, :] + rng.gumbel(size=(hi - lo, N_MERCHANTS))
        favourites[lo:hi] = np.argsort(-keys, axis=1)[:, :8]
    favourite_cum = _preference_cum(rng, n_fav, 8, 1.1)

    # Doctors and engineers spend more per purchase, students less.
    level = np.array([0.5, -0.6, -0.1, 0.3, 0.0])[occupation]
    typical = np.clip(np.exp(rng.normal(np.log(60.0) + level, 0.8)), 8.0, 900.0)
    amount_sigma = rng.uniform(0.35, 0.7, a)

    night_owl = rng.random(a) < 0.1
    peak_hour = np.where(
        night_owl, rng.uniform(21.0, 26.0, a) % 24, np.clip(rng.normal(14.0, 3.0, a), 8, 20)
    )
    hour_sigma = rng.uniform(1.5, 3.5, a)

    # Younger customers live online; older ones use branches more.
    young = np.clip((60 - age) / 40, 0, 1)[:, None]
    alpha = 2.0 + 6.0 * (young * np.array([1.0, 0.4, 0.0]) + (1 - young) * [0.2, 0.4, 1.0])
    channel_probs = rng.gamma(alpha)
    channel_cum = np.cumsum(channel_probs / channel_probs.sum(1, keepdims=True), axis=1)
    channel_cum[:, -1] = 1.0

    rate = np.clip(rng.lognormal(np.log(0.27), 0.6, a), 0.07, 3.0)
    credit_share = rng.uniform(0.05, 0.2, a)
    duration_median = rng.uniform(30.0, 180.0, a)

    employer = rng.choice(N_MERCHANTS, size=a, p=world.merchant_popularity)
    biweekly = rng.random(a) < 0.3
    payday = np.where(biweekly, rng.integers(0, 14, a), rng.integers(1, 29, a))
    pay_second = rng.integers(6 * 3600, 10 * 3600, a)

    # Merchants have price levels, but an account's own favourites set what
    # it usually pays: scale so its typical amount is what it pays there.
    fav_weights = np.diff(favourite_cum, axis=1, prepend=0.0)
    price_scale = 1.0 / (fav_weights * world.merchant_price[favourites]).sum(1)
    mean_price = (1 - NEW_MERCHANT_P) + NEW_MERCHANT_P * price_scale * float(
        world.merchant_popularity @ world.merchant_price
    )
    # Income roughly covers what the account spends, so balances wander
    # instead of exploding or sitting at zero.
    mean_amount = typical * mean_price * np.exp(amount_sigma**2 / 2) * (1 + BIG_PURCHASE_P * 7)
    monthly_spend = rate * 30.44 * mean_amount * (1 - 2 * credit_share)
    monthly_income = monthly_spend * rng.uniform(1.0, 1.2, a)
    pay_cents = np.round(np.where(biweekly, monthly_income * 12 / 26, monthly_income) * 100)
    start_balance = np.round(
        (monthly_spend * rng.uniform(0.3, 3.0, a) + rng.uniform(50.0, 500.0, a)) * 100
    )

    return _Profiles(
        home=home,
        age=age,
        occupation=occupation,
        devices=devices,
        device_cum=_preference_cum(rng, n_devices, 3, 2.0),
        ips=ips,
        ip_cum=_preference_cum(rng, n_ips, 3, 1.5),
        favourites=favourites,
        favourite_cum=favourite_cum,
        typical=typical,
        price_scale=price_scale,
        merchant_usual=_merchant_usual(world, favourites, fav_weights, typical * price_scale),
        amount_sigma=amount_sigma,
        peak_hour=peak_hour,
        hour_sigma=hour_sigma,
        channel_cum=channel_cum,
        rate=rate,
        credit_share=credit_share,
        duration_median=duration_median,
        employer=employer,
        biweekly=biweekly,
        payday=payday,
        pay_second=pay_second,
        pay_cents=pay_cents.astype(np.int64),
        start_balance=np.minimum(start_balance, BALANCE_MAX_CENTS // 10).astype(np.int64),
    )


def _merchant_usual(
    world: _World, favourites: np.ndarray, weights: np.ndarray, ticket: np.ndarray
) -> np.ndarray:
    """What a merchant's regular customers typically pay there."""
    fallback = float(np.median(ticket))
    usual = np.empty(N_MERCHANTS)
    for m in range(N_MERCHANTS):
        customers = ((favourites == m) & (weights > 0)).any(axis=1)
        usual[m] = float(np.median(ticket[customers])) if customers.any() else fallback
    return usual * world.merchant_price


def _pick(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw: index of the first cumulative weight > u."""
    return (u[:, None] >= cum).sum(axis=1)


# ---------------------------------------------------------------- rows


_COLUMNS = (
    ("acc", np.int64),
    ("t", np.int64),
    ("cents", np.int64),
    ("credit", np.bool_),
    ("merchant", np.int64),
    ("channel", np.int64),
    ("device", np.int64),
    ("ip", np.int64),
    ("city", np.int64),
    ("duration", np.int64),
    ("login", np.int64),
    ("scenario", np.int64),  # 0 for normal rows, else 1 + index in SCENARIOS
    ("frac", np.float64),  # fraud only: share of the balance taken if the amount won't fit
)


@dataclass
class _Rows:
    acc: np.ndarray
    t: np.ndarray
    cents: np.ndarray
    credit: np.ndarray
    merchant: np.ndarray
    channel: np.ndarray
    device: np.ndarray
    ip: np.ndarray
    city: np.ndarray
    duration: np.ndarray
    login: np.ndarray
    scenario: np.ndarray
    frac: np.ndarray

    def __len__(self) -> int:
        return self.acc.size

    def take(self, index: np.ndarray) -> _Rows:
        return _Rows(*(getattr(self, name)[index] for name, _ in _COLUMNS))

    @staticmethod
    def concat(parts: list[_Rows]) -> _Rows:
        return _Rows(*(np.concatenate([getattr(p, name) for p in parts]) for name, _ in _COLUMNS))

    @staticmethod
    def from_lists(columns: dict[str, list]) -> _Rows:
        return _Rows(*(np.asarray(columns[name], dtype=dtype) for name, dtype in _COLUMNS))


@dataclass
class _State:
    """What carries from one window to the next, per account."""

    balance: np.ndarray
    last_t: np.ndarray
    history: np.ndarray  # rows so far
    used_merchant: np.ndarray  # (A, N_MERCHANTS) bool
    used_city: np.ndarray  # (A, len(CITIES)) bool


@dataclass
class _Calendar:
    days: int
    month_starts: np.ndarray  # seconds from the start, months + 1 entries
    windows: list[tuple[int, int]]


def _calendar(start: date, months: int, accounts: int, profiles: _Profiles) -> _Calendar:
    bounds = [(add_months(start, k) - start).days * _DAY for k in range(months + 1)]
    days = bounds[-1] // _DAY
    per_day = float(profiles.rate.sum()) + accounts / 30.0
    window_days = int(np.clip(_WINDOW_TARGET_ROWS // max(per_day, 1.0), 1, _WINDOW_MAX_DAYS))
    windows = [(d * _DAY, min(d + window_days, days) * _DAY) for d in range(0, days, window_days)]
    return _Calendar(days, np.array(bounds, dtype=np.int64), windows)


@dataclass
class _Trips:
    start: np.ndarray  # (A, months) seconds; start == end when no trip
    end: np.ndarray
    city: np.ndarray
    ip: np.ndarray  # -1 when the traveller keeps using their own addresses


def _trips(rng: np.random.Generator, profiles: _Profiles, world: _World, cal: _Calendar):
    a, m = profiles.home.size, cal.month_starts.size - 1
    has = rng.random((a, m)) < TRIP_PER_MONTH_P
    length = rng.integers(2, 7, (a, m)) * _DAY
    month_len = np.diff(cal.month_starts)[None, :]
    offset = (rng.random((a, m)) * np.maximum(month_len - length, _DAY)).astype(np.int64)
    start = cal.month_starts[None, :-1] + offset
    end = np.where(has, np.minimum(start + length, cal.month_starts[None, 1:]), start)
    city = rng.choice(len(CITIES), size=(a, m), p=world.city_weights)
    same = city == profiles.home[:, None]
    city[same] = (city[same] + 1 + rng.integers(0, len(CITIES) - 1, int(same.sum()))) % len(CITIES)
    # Half the trips go through a hotel or roaming address.
    ip = np.where(rng.random((a, m)) < 0.5, _random_ips(rng, a * m).reshape(a, m), -1)
    return _Trips(start, end, city, ip)


def _everyday_rows(
    rng: np.random.Generator,
    p: _Profiles,
    world: _World,
    trips: _Trips,
    cal: _Calendar,
    counts: np.ndarray,
    t0: int,
    t1: int,
) -> _Rows:
    acc = np.repeat(np.arange(counts.size), counts)
    n = acc.size
    day = rng.integers(0, (t1 - t0) // _DAY, n)
    hour = (p.peak_hour[acc] + p.hour_sigma[acc] * rng.standard_normal(n)) % 24.0
    t = t0 + day * _DAY + (hour * 3600).astype(np.int64)

    credit = rng.random(n) < p.credit_share[acc]
    merchant = p.favourites[acc, _pick(p.favourite_cum[acc], rng.random(n))]
    novel = rng.random(n) < NEW_MERCHANT_P
    merchant[novel] = rng.choice(N_MERCHANTS, int(novel.sum()), p=world.merchant_popularity)

    dollars = (
        p.typical[acc]
        * p.price_scale[acc]
        * world.merchant_price[merchant]
        * np.exp(p.amount_sigma[acc] * rng.standard_normal(n))
    )
    big = (~credit) & (rng.random(n) < BIG_PURCHASE_P)
    dollars[big] *= rng.uniform(4.0, 12.0, int(big.sum()))
    cents = np.clip(np.round(dollars * 100), 50, AMOUNT_MAX_CENTS).astype(np.int64)

    channel = _pick(p.channel_cum[acc, :2], rng.random(n))
    device = p.devices[acc, _pick(p.device_cum[acc, :2], rng.random(n))]
    new_device = rng.random(n) < NEW_DEVICE_P
    if new_device.any():
        device[new_device] = _fresh_devices(rng, p.devices[acc[new_device]])
    ip = p.ips[acc, _pick(p.ip_cum[acc, :2], rng.random(n))]
    new_ip = rng.random(n) < NEW_IP_P
    ip[new_ip] = _random_ips(rng, int(new_ip.sum()))

    month = np.searchsorted(cal.month_starts, t, side="right") - 1
    travelling = (t >= trips.start[acc, month]) & (t < trips.end[acc, month])
    city = np.where(travelling, trips.city[acc, month], p.home[acc])
    trip_ip = trips.ip[acc, month]
    ip = np.where(travelling & (trip_ip >= 0), trip_ip, ip)

    duration = np.clip(
        np.round(p.duration_median[acc] * np.exp(0.45 * rng.standard_normal(n))), 5, 900
    ).astype(np.int64)
    login = rng.choice(np.array([1, 2, 3]), n, p=[0.94, 0.045, 0.015])
    zeros = np.zeros(n, dtype=np.int64)
    return _Rows(
        acc, t, cents, credit, merchant, channel, device, ip, city, duration, login, zeros,
        np.zeros(n),
    )  # fmt: skip


def _salary_rows(rng: np.random.Generator, p: _Profiles, cal: _Calendar, t0: int, t1: int) -> _Rows:
    accs, times = [], []
    monthly = np.flatnonzero(~p.biweekly)
    first_month = int(np.searchsorted(cal.month_starts, t0, side="right")) - 1
    for k in range(first_month, cal.month_starts.size - 1):
        if cal.month_starts[k] >= t1:
            break
        t = cal.month_starts[k] + (p.payday[monthly] - 1) * _DAY + p.pay_second[monthly]
        hit = (t >= t0) & (t < t1)
        accs.append(monthly[hit])
        times.append(t[hit])
    biweekly = np.flatnonzero(p.biweekly)
    first = p.payday[biweekly] * _DAY + p.pay_second[biweekly]
    period = 14 * _DAY
    k = np.maximum(0, -((first - t0) // period))
    t = first + k * period
    hit = (t >= t0) & (t < t1)
    accs.append(biweekly[hit])
    times.append(t[hit])
    acc = np.concatenate(accs)
    n = acc.size
    # Pay varies a little (overtime, deductions) around the account's level.
    cents = np.round(p.pay_cents[acc] * rng.uniform(0.97, 1.03, n)).astype(np.int64)
    return _Rows(
        acc=acc,
        t=np.concatenate(times),
        cents=np.maximum(cents, 100),
        credit=np.ones(n, dtype=bool),
        merchant=p.employer[acc],
        channel=np.zeros(n, dtype=np.int64),
        device=p.devices[acc, 0],
        ip=p.ips[acc, 0],
        city=p.home[acc],
        duration=rng.integers(5, 40, n),
        login=np.ones(n, dtype=np.int64),
        scenario=np.zeros(n, dtype=np.int64),
        frac=np.zeros(n),
    )


def _salary_count(p: _Profiles, cal: _Calendar, months: int) -> int:
    first = p.payday[p.biweekly] * _DAY + p.pay_second[p.biweekly]
    biweekly = (cal.days * _DAY - 1 - first) // (14 * _DAY) + 1
    return int((~p.biweekly).sum()) * months + int(biweekly.clip(min=0).sum())


def _fresh_devices(rng: np.random.Generator, own: np.ndarray) -> np.ndarray:
    """One device id per row of `own` that is none of that row's devices."""
    fresh = rng.integers(0, N_DEVICE_IDS, own.shape[0])
    while (clash := (fresh[:, None] == own).any(axis=1)).any():
        fresh[clash] = rng.integers(0, N_DEVICE_IDS, int(clash.sum()))
    return fresh


# ---------------------------------------------------------------- fraud


@dataclass
class _Event:
    t: int
    scenario: str
    size: int


def _fraud_plan(
    rng: np.random.Generator, cal: _Calendar, normal_rows: int, fraud_rate: float
) -> list[list[_Event]]:
    """Fraud events per window, sized so fraud rows / all rows ≈ fraud_rate."""
    plan: list[list[_Event]] = [[] for _ in cal.windows]
    eligible = [i for i, (t0, _) in enumerate(cal.windows) if t0 >= FRAUD_MIN_DAYS * _DAY]
    if fraud_rate <= 0 or not eligible:
        return plan
    remaining = round(normal_rows * fraud_rate / (1 - fraud_rate))
    lengths = np.array([cal.windows[i][1] - cal.windows[i][0] for i in eligible], dtype=float)
    # Each scenario gets about the same number of rows, not of events.
    mean_size = np.array([sum(_SIZES[s]) / 2 for s in SCENARIOS])
    weights = (1 / mean_size) / (1 / mean_size).sum()
    while remaining > 0:
        scenario = SCENARIOS[rng.choice(len(SCENARIOS), p=weights)]
        lo, hi = _SIZES[scenario]
        size = int(rng.integers(lo, hi + 1))
        if size > remaining:
            if remaining >= lo:
                size = remaining
            else:
                scenario, size = ("account_takeover", "balance_drain")[rng.integers(0, 2)], 1
        w = eligible[rng.choice(len(eligible), p=lengths / lengths.sum())]
        t0, t1 = cal.windows[w]
        # Leave room for the longest burst (two hours) inside the window.
        t = int(rng.integers(t0, t1 - 3 * 3600))
        plan[w].append(_Event(t, scenario, size))
        remaining -= size
    for events in plan:
        events.sort(key=lambda e: (e.t, e.scenario))
    return plan


class _FraudBuilder:
    """Builds one window's fraud rows against what each account has done so far."""

    def __init__(
        self,
        rng: np.random.Generator,
        p: _Profiles,
        world: _World,
        state: _State,
        t1: int,
    ) -> None:
        self.rng, self.p, self.world, self.state, self.t1 = rng, p, world, state, t1
        self.rows: dict[str, list] = {name: [] for name, _ in _COLUMNS}
        self.hit: set[int] = set()

    # Victims ---------------------------------------------------------------

    def _victims(self, k: int, need_cents: np.ndarray | None = None, merchant: int = -1):
        ok = self.state.history >= FRAUD_MIN_HISTORY
        if ok.sum() < k:
            # Small runs: accept a thinner history rather than lose the event.
            ok = self.state.history >= FRAUD_MIN_HISTORY_SMALL_RUN
        if merchant >= 0:
            ok &= ~self.state.used_merchant[:, merchant]
        # One event per account and window keeps events apart; at very high
        # fraud rates there are not enough accounts for that.
        if self.hit and ok.sum() - len(self.hit) >= k:
            ok[list(self.hit)] = False
        # Fraudsters go where the money is: prefer accounts that can pay.
        rich = ok if need_cents is None else ok & (self.state.balance >= need_cents)
        pool = np.flatnonzero(rich if rich.sum() >= k else ok)
        if pool.size == 0:
            return np.empty(0, dtype=np.int64)
        chosen = self.rng.choice(pool, size=min(k, pool.size), replace=False)
        self.hit.update(int(c) for c in chosen)
        return chosen

    # Attributes ------------------------------------------------------------

    def _unused(self, used: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
        free = np.flatnonzero(~used)
        if free.size == 0:
            free = np.arange(used.size)
        w = weights[free] / weights[free].sum()
        return self.rng.choice(free, size=k, replace=k > free.size, p=w)

    def _new_ip(self, a: int) -> int:
        while (ip := int(_random_ips(self.rng, 1)[0])) in self.p.ips[a]:
            pass
        return ip

    def _new_device(self, a: int) -> int:
        return int(_fresh_devices(self.rng, self.p.devices[a : a + 1])[0])

    def _off_hour_time(self, a: int, t: int) -> int:
        hour = (self.p.peak_hour[a] + 12 + self.rng.normal(0, 2)) % 24
        return t - t % _DAY + int(hour * 3600)

    def _habit_time(self, a: int, day_start: int) -> int:
        hour = (self.p.peak_hour[a] + self.p.hour_sigma[a] * self.rng.normal()) % 24
        return day_start + int(hour * 3600)

    def _add(self, a: int, t: int, dollars: float, scenario: str, **values: int) -> None:
        r = self.rows
        r["acc"].append(a)
        r["t"].append(min(max(t, 0), self.t1 - 1))
        r["cents"].append(int(np.clip(round(dollars * 100), 50, AMOUNT_MAX_CENTS)))
        r["credit"].append(False)
        r["scenario"].append(SCENARIOS.index(scenario) + 1)
        frac_range = (0.81, 0.99) if scenario == "balance_drain" else (0.85, 0.97)
        r["frac"].append(float(self.rng.uniform(*frac_range)))
        for name in ("merchant", "channel", "device", "ip", "city", "duration", "login"):
            r[name].append(values[name])
        self.state.used_merchant[a, values["merchant"]] = True
        self.state.used_city[a, values["city"]] = True

    # Scenarios -------------------------------------------------------------

    def account_takeover(self, event: _Event) -> None:
        mult = self.rng.uniform(5, 20)
        for a in self._victims(1, np.round(self.p.typical * mult * 100)):
            t = self._off_hour_time(a, event.t) if self.rng.random() < 0.75 else event.t
            city = self.p.home[a]
            if self.rng.random() < 0.8:
                weights = self.world.city_weights.copy()
                weights[city] = 0
                city = self.rng.choice(len(CITIES), p=weights / weights.sum())
            self._add(
                a,
                t,
                self.p.typical[a] * mult,
                event.scenario,
                merchant=int(self.rng.choice(N_MERCHANTS, p=self.world.merchant_popularity)),
                channel=0,
                device=self._new_device(a),
                ip=self._new_ip(a),
                city=int(city),
                duration=int(self.rng.integers(150, 900)),
                login=int(self.rng.integers(3, 7)),
            )

    def card_testing(self, event: _Event) -> None:
        # Enough balance for the test charges to go through.
        for a in self._victims(1, np.full(self.p.home.size, 5_000)):
            merchants = self._unused(
                self.state.used_merchant[a], self.world.merchant_popularity, event.size
            )
            new_device = self.rng.random() < 0.7
            device = self._new_device(a) if new_device else int(self.p.devices[a, 0])
            ip = self._new_ip(a) if new_device or self.rng.random() < 0.5 else int(self.p.ips[a, 0])
            city = int(self.p.home[a])
            if self.rng.random() < 0.5:
                city = int(self.rng.choice(len(CITIES), p=self.world.city_weights))
            t = event.t
            for merchant in merchants:
                self._add(
                    a,
                    t,
                    self.rng.uniform(0.5, 5.0),
                    event.scenario,
                    merchant=int(merchant),
                    channel=0,
                    device=device,
                    ip=ip,
                    city=city,
                    duration=int(self.rng.integers(3, 20)),
                    login=1,
                )
                t += int(self.rng.integers(10, 90))

    def balance_drain(self, event: _Event) -> None:
        for a in self._victims(1, np.full(self.p.home.size, 20_000)):
            city = int(self._unused(self.state.used_city[a], self.world.city_weights, 1)[0])
            atm = self.rng.random() < 0.5
            t = event.t
            if self.rng.random() < 0.7:
                t = t - t % _DAY + int(self.rng.integers(0, 5 * 3600))
            self._add(
                a,
                t,
                # Placeholder: settling sets the amount to a share of the balance.
                1.0,
                event.scenario,
                merchant=int(self.rng.choice(N_MERCHANTS, p=self.world.merchant_popularity)),
                channel=1 if atm else 0,
                device=self._new_device(a)
                if self.rng.random() < 0.6
                else int(self.p.devices[a, 0]),
                ip=self._new_ip(a),
                city=city,
                duration=int(self.rng.integers(20, 90) if atm else self.rng.integers(60, 300)),
                login=int(self.rng.integers(1, 4)),
            )

    def velocity_spree(self, event: _Event) -> None:
        mults = self.rng.uniform(2, 6, event.size)
        need = np.round(self.p.typical * mults.sum() * 100)
        for a in self._victims(1, need):
            merchants = self._unused(
                self.state.used_merchant[a], self.world.merchant_popularity, event.size
            )
            ip = self._new_ip(a)
            span = self.rng.uniform(3600, 7200)
            offsets = np.sort(self.rng.uniform(0, span, event.size)).astype(int)
            device = int(
                self.p.devices[a, _pick(self.p.device_cum[a : a + 1, :2], self.rng.random(1))[0]]
            )
            for merchant, offset, mult in zip(merchants, offsets, mults, strict=True):
                self._add(
                    a,
                    event.t + int(offset),
                    self.p.typical[a] * mult,
                    event.scenario,
                    merchant=int(merchant),
                    channel=0,
                    device=device,
                    ip=ip,
                    city=int(self.p.home[a]),
                    duration=int(self.rng.integers(20, 120)),
                    login=1,
                )

    def merchant_fraud(self, event: _Event) -> None:
        # A popular merchant is the one worth compromising; try a few so that
        # enough accounts that never shopped there exist.
        for attempt in range(5):
            merchant = int(self.rng.choice(N_MERCHANTS, p=self.world.merchant_popularity))
            victims = self._victims(event.size, merchant=merchant)
            if victims.size >= min(2, event.size) or attempt == 4:
                break
            self.hit.difference_update(int(v) for v in victims)
        # Well above the merchant's usual ticket, yet the kind of amount the
        # account itself might spend: the subtle scenario.
        usual = self.p.merchant_usual[merchant]
        day_start = event.t - event.t % _DAY
        last_day = (self.t1 - 1) // _DAY * _DAY
        for a in victims:
            day = min(day_start + int(self.rng.integers(0, 3)) * _DAY, last_day)
            own = self.p.typical[a] * self.p.price_scale[a] * self.world.merchant_price[merchant]
            base = max(usual, own)
            channel = int(_pick(self.p.channel_cum[a : a + 1, :2], self.rng.random(1))[0])
            self._add(
                a,
                self._habit_time(a, day),
                base * self.rng.uniform(2.5, 5.0),
                event.scenario,
                merchant=merchant,
                channel=channel,
                device=int(self.p.devices[a, 0]),
                ip=int(self.p.ips[a, 0]),
                city=int(self.p.home[a]),
                duration=int(
                    np.clip(self.p.duration_median[a] * self.rng.lognormal(0, 0.3), 5, 900)
                ),
                login=1,
            )

    def build(self, events: list[_Event]) -> _Rows:
        for event in events:
            getattr(self, event.scenario)(event)
        return _Rows.from_lists(self.rows)


# ---------------------------------------------------------------- settling


def _settle(rows: _Rows, state: _State) -> tuple[_Rows, np.ndarray, np.ndarray, int]:
    """Apply each row to its account's balance, in time order.

    A normal debit the balance cannot cover is declined (dropped); a fraud
    debit that does not fit takes a share of what is there instead, and a
    balance drain always takes its share. Returns the kept rows in output
    order (time, then account), their balances after the row, their previous
    transaction times (-1 for none) and the number of declined rows.
    """
    order = np.lexsort((rows.t, rows.acc))
    rows = rows.take(order)
    n = len(rows)
    if n == 0:
        return rows, np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    signed = np.where(rows.credit, rows.cents, -rows.cents)
    first = np.ones(n, dtype=bool)
    first[1:] = rows.acc[1:] != rows.acc[:-1]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    running = np.cumsum(signed)
    before_group = running[starts] - signed[starts]
    balance = state.balance[rows.acc] + running - before_group[group]

    # Only accounts whose path breaks a rule (or has fraud) are walked row by row.
    trouble = (balance < 0) | (balance > BALANCE_MAX_CENTS) | (rows.scenario > 0)
    keep = np.ones(n, dtype=bool)
    ends = np.append(starts[1:], n)
    for g in np.unique(group[trouble]):
        lo, hi = int(starts[g]), int(ends[g])
        b = int(state.balance[rows.acc[lo]])
        cents = rows.cents[lo:hi].tolist()
        credit = rows.credit[lo:hi].tolist()
        scenario = rows.scenario[lo:hi].tolist()
        frac = rows.frac[lo:hi].tolist()
        for i in range(hi - lo):
            c = cents[i]
            if credit[i]:
                if b + c > BALANCE_MAX_CENTS:
                    keep[lo + i] = False
                    continue
                b += c
            else:
                if scenario[i] == _DRAIN or (scenario[i] and c > b):
                    c = int(b * frac[i])
                    if c < 50:
                        keep[lo + i] = False
                        continue
                    rows.cents[lo + i] = c
                elif c > b:
                    keep[lo + i] = False
                    continue
                b -= c
            balance[lo + i] = b

    rows, balance = rows.take(keep), balance[keep]
    n = len(rows)
    if n:
        first = np.ones(n, dtype=bool)
        first[1:] = rows.acc[1:] != rows.acc[:-1]
        previous = np.empty(n, dtype=np.int64)
        previous[1:] = rows.t[:-1]
        previous[first] = state.last_t[rows.acc[first]]
        last = np.append(first[1:], True)
        state.balance[rows.acc[last]] = balance[last]
        state.last_t[rows.acc[last]] = rows.t[last]
        state.history += np.bincount(rows.acc, minlength=state.history.size)
    else:
        previous = np.zeros(0, np.int64)
    # Stable on the account-sorted order, so equal times keep account order.
    out = np.lexsort((rows.acc, rows.t))
    return rows.take(out), balance[out], previous[out], int((~keep).sum())


_DRAIN = SCENARIOS.index("balance_drain") + 1


# ---------------------------------------------------------------- writing


class _Formatter:
    def __init__(self, start: date, days: int, p: _Profiles) -> None:
        self.day = np.array(
            [(start + timedelta(days=d)).isoformat() + " " for d in range(days + 1)],
            dtype=object,
        )
        self.minute = np.array([f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)], object)
        self.second = np.array([f"{s:02d}" for s in range(60)], dtype=object)
        self.account = np.array([f"AC{i + 1:05d}" for i in range(p.home.size)], dtype=object)
        self.age = np.array([str(x) for x in p.age], dtype=object)
        self.occupation = np.array(OCCUPATIONS, dtype=object)[p.occupation]
        self.city = np.array(CITIES, dtype=object)
        self.merchant = np.array([f"M{i + 1:03d}" for i in range(N_MERCHANTS)], dtype=object)
        self.channel = np.array(CHANNELS, dtype=object)
        self.kind = np.array(["Debit", "Credit"], dtype=object)
        self.scenario = np.array(["0,", *(f"1,{s}" for s in SCENARIOS)], dtype=object)

    def times(self, t: np.ndarray) -> list[str]:
        text = self.day[t // _DAY] + self.minute[t % _DAY // 60] + self.second[t % 60]
        return text.tolist()

    @staticmethod
    def money(cents: np.ndarray) -> list[str]:
        return [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()]

    def lines(
        self, rows: _Rows, balance: np.ndarray, previous: np.ndarray, first_id: int
    ) -> tuple[str, str]:
        n = len(rows)
        ids = [f"TX{i:08d}" for i in range(first_id, first_id + n)]
        prev = np.where(previous >= 0, previous, 0)
        prev_text = self.times(prev)
        for i in np.flatnonzero(previous < 0).tolist():
            prev_text[i] = ""
        ip = rows.ip.tolist()
        columns = [
            ids,
            self.account[rows.acc].tolist(),
            self.money(rows.cents),
            self.times(rows.t),
            self.kind[rows.credit.astype(np.int64)].tolist(),
            self.city[rows.city].tolist(),
            [f"D{d:06d}" for d in rows.device.tolist()],
            [f"{x >> 24}.{x >> 16 & 255}.{x >> 8 & 255}.{x & 255}" for x in ip],
            self.merchant[rows.merchant].tolist(),
            self.channel[rows.channel].tolist(),
            self.age[rows.acc].tolist(),
            self.occupation[rows.acc].tolist(),
            [str(d) for d in rows.duration.tolist()],
            [str(x) for x in rows.login.tolist()],
            self.money(balance),
            prev_text,
        ]
        transactions = "\n".join(map(",".join, zip(*columns, strict=True)))
        flags = self.scenario[rows.scenario].tolist()
        labels = "\n".join(map(",".join, zip(ids, flags, strict=True)))
        return transactions + "\n", labels + "\n"


# ---------------------------------------------------------------- entry point


def _check(
    out: Path, labels: Path, accounts: int, months: int, seed: int, fraud_rate: float, start: date
) -> date:
    if not 1 <= accounts <= MAX_ACCOUNTS:
        raise GenerationError(f"accounts must be between 1 and {MAX_ACCOUNTS:,}, not {accounts}")
    if not 1 <= months <= MAX_MONTHS:
        raise GenerationError(f"months must be between 1 and {MAX_MONTHS}, not {months}")
    if seed < 0:
        raise GenerationError(f"seed must be zero or positive, not {seed}")
    if not 0 <= fraud_rate <= FRAUD_RATE_MAX:  # also refuses NaN
        raise GenerationError(
            f"fraud rate must be between 0 and {FRAUD_RATE_MAX}, not {fraud_rate}"
        )
    try:
        end = add_months(start, months)
    except (ValueError, OverflowError):
        raise GenerationError(f"{months} months after {start} is past the year 9999") from None
    if out.resolve() == labels.resolve():
        raise GenerationError(f"the transactions and labels would both be written to {out}")
    for path in (out, labels):
        if path.is_dir():
            raise GenerationError(f"{path} is a directory")
        if not path.parent.is_dir():
            raise GenerationError(f"{path.parent}: no such directory")
        if not os.access(path.parent, os.W_OK):
            raise GenerationError(f"{path.parent}: not writable")
    return end


def generate(
    *,
    out: Path,
    labels: Path | None = None,
    accounts: int,
    months: int,
    seed: int,
    fraud_rate: float = 0.01,
    start: date = date(2024, 1, 1),
    progress: ProgressCallback | None = None,
) -> GenerationSummary:
    """Write `accounts` accounts' transactions over `months` months to `out`
    (the public data set's CSV format) and their fraud labels to `labels`.

    Both files appear complete or not at all: they are written next to their
    destination and renamed at the end. Raises GenerationError for bad
    arguments or unwritable paths.
    """
    out = Path(out)
    labels = Path(labels) if labels is not None else default_labels_path(out)
    end = _check(out, labels, accounts, months, seed, fraud_rate, start)

    profile_seq, plan_seq, window_seq = np.random.SeedSequence(seed).spawn(3)
    profile_rng = np.random.default_rng(profile_seq)
    world = _world(profile_rng)
    profiles = _profiles(profile_rng, world, accounts)
    cal = _calendar(start, months, accounts, profiles)
    trips = _trips(profile_rng, profiles, world, cal)

    plan_rng = np.random.default_rng(plan_seq)
    lengths = np.array([(t1 - t0) / _DAY for t0, t1 in cal.windows])
    counts = plan_rng.poisson(profiles.rate[:, None] * lengths[None, :])
    salaries = _salary_count(profiles, cal, months)
    expected_normal = int(counts.sum()) + salaries
    plan = _fraud_plan(plan_rng, cal, expected_normal, fraud_rate)
    expected_total = expected_normal + sum(e.size for events in plan for e in events)

    state = _State(
        balance=profiles.start_balance.copy(),
        last_t=np.full(accounts, -1, dtype=np.int64),
        history=np.zeros(accounts, dtype=np.int64),
        used_merchant=np.zeros((accounts, N_MERCHANTS), dtype=bool),
        used_city=np.zeros((accounts, len(CITIES)), dtype=bool),
    )
    state.used_city[np.arange(accounts), profiles.home] = True
    formatter = _Formatter(start, cal.days, profiles)
    fraud_rows = dict.fromkeys(SCENARIOS, 0)
    written = declined = 0
    tmp_out = out.with_name(f".{out.name}.partial")
    tmp_labels = labels.with_name(f".{labels.name}.partial")
    try:
        with (
            tmp_out.open("w", encoding="utf-8", newline="") as tx_file,
            tmp_labels.open("w", encoding="utf-8", newline="") as label_file,
        ):
            tx_file.write(",".join(HEADER) + "\n")
            label_file.write(",".join(LABEL_HEADER) + "\n")
            for w, ((t0, t1), seq) in enumerate(
                zip(cal.windows, window_seq.spawn(len(cal.windows)), strict=True)
            ):
                rng = np.random.default_rng(seq)
                normal = _everyday_rows(rng, profiles, world, trips, cal, counts[:, w], t0, t1)
                salary = _salary_rows(rng, profiles, cal, t0, t1)
                for part in (normal, salary):
                    state.used_merchant[part.acc, part.merchant] = True
                    state.used_city[part.acc, part.city] = True
                fraud = _FraudBuilder(rng, profiles, world, state, t1).build(plan[w])
                rows, balance, previous, dropped = _settle(
                    _Rows.concat([normal, salary, fraud]), state
                )
                declined += dropped
                # Text costs ~20x the arrays' memory: format a slice at a time.
                for lo in range(0, len(rows), _FORMAT_ROWS):
                    part = slice(lo, lo + _FORMAT_ROWS)
                    tx_text, label_text = formatter.lines(
                        rows.take(part), balance[part], previous[part], written + lo + 1
                    )
                    tx_file.write(tx_text)
                    label_file.write(label_text)
                for code, count in zip(
                    *np.unique(rows.scenario[rows.scenario > 0], return_counts=True), strict=True
                ):
                    fraud_rows[SCENARIOS[code - 1]] += int(count)
                written += len(rows)
                if progress is not None:
                    progress(written, max(expected_total, written))
        tmp_out.replace(out)
        tmp_labels.replace(labels)
    except OSError as exc:
        raise GenerationError(f"cannot write {exc.filename or out}: {exc.strerror}") from None
    finally:
        tmp_out.unlink(missing_ok=True)
        tmp_labels.unlink(missing_ok=True)
    return GenerationSummary(
        rows=written,
        fraud_rows=fraud_rows,
        accounts=accounts,
        months=months,
        seed=seed,
        fraud_rate=fraud_rate,
        start=start,
        end=end,
        out=out,
        labels=labels,
        declined=declined,
    )
