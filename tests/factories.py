"""Small, deterministic test data: valid transactions and stored histories."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import numpy as np

from detection.schema import FIELDS, TransactionIn, validate_transaction
from detection.store import transactions_insert
from detection.synthetic import HEADER

START = datetime(2024, 3, 1, tzinfo=UTC)
# The public data set's CSV columns, in the order of the snake_case FIELDS.
CSV_HEADER: list[str] = list(HEADER)
CSV_NAMES: dict[str, str] = dict(zip(FIELDS, CSV_HEADER, strict=True))


def transaction_data(**overrides: Any) -> dict[str, Any]:
    """A valid transaction in the API's snake_case shape."""
    data: dict[str, Any] = {
        "transaction_id": "TX000001",
        "account_id": "AC00001",
        "amount": "42.50",
        "timestamp": "2024-03-01T12:00:00Z",
        "transaction_type": "Debit",
        "location": "Houston",
        "device_id": "D000001",
        "ip_address": "10.0.0.1",
        "merchant_id": "M001",
        "channel": "Online",
        "customer_age": 40,
        "customer_occupation": "Engineer",
        "duration_seconds": 60,
        "login_attempts": 1,
        "account_balance": "5000.00",
    }
    data.update(overrides)
    return data


def item(**overrides: Any) -> TransactionIn:
    return validate_transaction(transaction_data(**overrides))


def habitual_data(last: Any, **overrides: Any) -> dict[str, Any]:
    """A transaction in the habits of ``last``'s account (a stored Transaction
    or a TransactionIn): its amount, city, device, IP, merchant and balance."""
    return transaction_data(
        account_id=last.account_id,
        amount=str(last.amount),
        location=last.location,
        device_id=last.device_id,
        ip_address=last.ip_address,
        merchant_id=last.merchant_id,
        account_balance=str(last.account_balance),
        **overrides,
    )


def csv_row(data: Mapping[str, Any]) -> list[str]:
    """A snake_case transaction as one CSV row, in CSV_HEADER's column order;
    a missing or None value is an empty cell."""
    return ["" if data.get(name) is None else str(data[name]) for name in FIELDS]


def csv_write(
    handle: TextIO, rows: Iterable[Sequence[Any]], header: Sequence[str] = CSV_HEADER
) -> None:
    """A CSV file in the public data set's format: the header, then these rows."""
    writer = csv.writer(handle)
    writer.writerow(header)
    writer.writerows(rows)


def habitual_items(
    *, accounts: int = 30, per_account: int = 25, seed: int = 0, prefix: str = "TX"
) -> list[TransactionIn]:
    """Accounts with steady habits: one city, one or two devices, a few
    merchants, amounts around a personal median, daytime activity."""
    rng = np.random.default_rng(seed)
    cities = ["Houston", "Austin", "Denver", "Boston", "Seattle", "Miami"]
    items = []
    number = 0
    for a in range(accounts):
        account = f"AC{a:05d}"
        median = float(rng.uniform(20, 300))
        devices = [f"D{a:04d}{d:02d}" for d in range(int(rng.integers(1, 3)))]
        merchants = [f"M{m:03d}" for m in rng.choice(40, size=3, replace=False)]
        city = cities[a % len(cities)]
        when = START + timedelta(hours=float(rng.uniform(0, 48)))
        balance = float(rng.uniform(2000, 20000))
        for _ in range(per_account):
            when += timedelta(hours=float(rng.uniform(8, 40)))
            when = when.replace(hour=int(rng.integers(9, 19)))
            amount = round(median * float(rng.lognormal(0, 0.3)), 2)
            balance = max(balance - amount, 100.0)
            number += 1
            items.append(
                item(
                    transaction_id=f"{prefix}{number:06d}",
                    account_id=account,
                    amount=f"{amount:.2f}",
                    timestamp=when.isoformat(),
                    location=city,
                    device_id=str(rng.choice(devices)),
                    ip_address=f"10.{a}.0.{int(rng.integers(1, 3))}",
                    merchant_id=str(rng.choice(merchants)),
                    duration_seconds=int(rng.integers(30, 200)),
                    account_balance=f"{balance:.2f}",
                )
            )
    return items


def store(items: list[TransactionIn]) -> dict[str, int]:
    return transactions_insert(items=items)
