"""Deterministic transactions for the API tests: a few weeks of ordinary
history over 40 accounts (enough to train both models), and payloads for new
transactions in the snake_case and in the earlier system's shape."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from detection.models import ModelVersion

ACCOUNTS = 40
START = datetime(2024, 1, 1, tzinfo=UTC)
LOCATIONS = ["Austin", "Boston", "Denver", "Miami", "Seattle", "Chicago", "Phoenix", "Dallas"]
OCCUPATIONS = ["Doctor", "Student", "Retired", "Engineer", "Other"]


def account_id(number: int) -> str:
    return f"AC{number:05d}"


def _profile(number: int) -> dict[str, Any]:
    rng = random.Random(number)
    return {
        "account_id": account_id(number),
        "location": LOCATIONS[number % len(LOCATIONS)],
        "device_id": f"D{number:06d}",
        "ip_address": f"10.{number}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "merchants": [f"M{(number * 7 + k) % 60:03d}" for k in range(3)],
        "customer_age": 20 + number % 60,
        "customer_occupation": OCCUPATIONS[number % len(OCCUPATIONS)],
        "typical_amount": 40 + number * 5,
        "balance": 2000 + number * 250,
    }


def history_payloads(count: int = 300, seed: int = 7) -> list[dict[str, Any]]:
    """Ordinary transactions spread over 60 days, ``TXH…`` ids, oldest first."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        number = index % ACCOUNTS
        profile = _profile(number)
        when = START + timedelta(seconds=rng.randrange(60 * 86400))
        rows.append(
            {
                "transaction_id": f"TXH{index:06d}",
                "account_id": profile["account_id"],
                "amount": round(profile["typical_amount"] * rng.uniform(0.6, 1.5), 2),
                "timestamp": when.isoformat(),
                "transaction_type": "Debit" if rng.random() < 0.8 else "Credit",
                "location": profile["location"],
                "device_id": profile["device_id"],
                "ip_address": profile["ip_address"],
                "merchant_id": rng.choice(profile["merchants"]),
                "channel": rng.choice(["Online", "ATM", "Branch"]),
                "customer_age": profile["customer_age"],
                "customer_occupation": profile["customer_occupation"],
                "duration_seconds": rng.randrange(30, 240),
                "login_attempts": 1,
                "account_balance": profile["balance"],
            }
        )
    return sorted(rows, key=lambda row: row["timestamp"])


def transaction_payload(
    transaction_id: str = "TXN000001", account: int = 3, **overrides: Any
) -> dict[str, Any]:
    """A new, ordinary transaction of an account that has history."""
    profile = _profile(account)
    payload = {
        "transaction_id": transaction_id,
        "account_id": profile["account_id"],
        "amount": float(profile["typical_amount"]),
        "timestamp": (START + timedelta(days=61)).isoformat(),
        "transaction_type": "Debit",
        "location": profile["location"],
        "device_id": profile["device_id"],
        "ip_address": profile["ip_address"],
        "merchant_id": profile["merchants"][0],
        "channel": "Online",
        "customer_age": profile["customer_age"],
        "customer_occupation": profile["customer_occupation"],
        "duration_seconds": 90,
        "login_attempts": 1,
        "account_balance": float(profile["balance"]),
        "previous_transaction_at": (START + timedelta(days=59)).isoformat(),
    }
    payload.update(overrides)
    return payload


def suspicious_payload(transaction_id: str = "TXS000001", account: int = 3) -> dict[str, Any]:
    """Far above the account's usual amount, from a new device, place and IP."""
    return transaction_payload(
        transaction_id,
        account,
        amount=95_000.0,
        location="Anchorage",
        device_id="D999999",
        ip_address="203.0.113.77",
        merchant_id="M999",
        login_attempts=5,
        duration_seconds=4000,
        timestamp=(START + timedelta(days=61, hours=3)).isoformat(),
    )


def many_payloads(count: int, prefix: str = "TXB") -> list[dict[str, Any]]:
    return [
        transaction_payload(
            f"{prefix}{index:06d}",
            index % ACCOUNTS,
            timestamp=(START + timedelta(days=61, minutes=index)).isoformat(),
        )
        for index in range(count)
    ]


# The earlier FastAPI system's request body: a JSON list in its field names.
OLD_SYSTEM_PAYLOAD = [
    {
        "TransactionID": "TX000001",
        "AccountID": "AC00003",
        "TransactionAmount": 14.09,
        "TransactionDate": "2024-03-02 16:29:14",
        "TransactionType": "Debit",
        "Location": "Miami",
        "DeviceID": "D000380",
        "IPAddress": "162.198.218.92",
        "MerchantID": "M015",
        "Channel": "ATM",
        "CustomerAge": 70,
        "CustomerOccupation": "Doctor",
        "TransactionDuration": 81,
        "LoginAttempts": 1,
        "AccountBalance": 5112.21,
        "PreviousTransactionDate": "2024-02-28 08:08:08",
    },
    {
        "TransactionID": "TX000002",
        "AccountID": "AC00005",
        "TransactionAmount": 376.24,
        "TransactionDate": "2024-03-02 17:42:39",
        "TransactionType": "Debit",
        "Location": "Chicago",
        "DeviceID": "D000051",
        "IPAddress": "13.149.61.4",
        "MerchantID": "M052",
        "Channel": "ATM",
        "CustomerAge": 68,
        "CustomerOccupation": "Doctor",
        "TransactionDuration": 141,
        "LoginAttempts": 1,
        "AccountBalance": 13758.91,
        "PreviousTransactionDate": "2024-02-28 08:09:35",
    },
]


# --- model versions ------------------------------------------------------------

VERSION_FIELDS = (
    "algorithm",
    "version",
    "is_active",
    "activated_at",
    "params",
    "features",
    "threshold",
    "metrics",
    "training_rows",
    "training_since",
    "training_until",
    "artifact_path",
    "sha256",
    "format_version",
    "sklearn_version",
)


@dataclass(frozen=True)
class Trained:
    versions: dict[str, ModelVersion]
    folder: Path


_UNUSED_PKS = itertools.count(1_000_000)


def tampered_version(trained: Trained, algorithm: str) -> ModelVersion:
    """Make active a version whose artifact file was altered after it was
    recorded: a copy of the real artifact with one payload byte flipped.

    A new row (rather than editing the session's shared file) keeps other
    tests' artifacts intact; its primary key is one this process has never
    used, so the registry's cache of verified artifacts (keyed by primary key
    and checksum) cannot answer for it.
    """
    original = trained.versions[algorithm]
    content = bytearray((trained.folder / original.artifact_path).read_bytes())
    content[-100] ^= 0xFF
    pk = next(_UNUSED_PKS)
    name = f"tampered-{algorithm}-{pk}.joblib"
    (trained.folder / name).write_bytes(bytes(content))
    ModelVersion.objects.filter(pk=original.pk).update(is_active=False)
    fields = {name_: getattr(original, name_) for name_ in VERSION_FIELDS}
    return ModelVersion.objects.create(
        pk=pk,
        **(fields | {"version": original.version + 1, "artifact_path": name, "is_active": True}),
    )


def extra_version(trained: Trained, algorithm: str, **overrides: Any) -> ModelVersion:
    """Another (inactive) version of a model, backed by the same verified artifact."""
    original = trained.versions[algorithm]
    fields = {name: getattr(original, name) for name in VERSION_FIELDS}
    return ModelVersion.objects.create(
        **(fields | {"version": original.version + 1, "is_active": False} | overrides)
    )
