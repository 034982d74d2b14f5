"""Test data for the pages: a scored history and transactions that stand out."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from detection.models import ModelVersion, Transaction
from detection.schema import TransactionIn
from detection.scoring import stored_transactions_score
from detection.training import models_train
from tests.factories import habitual_items, item, store, transaction_data

# Few trees keep training well under a second; the verdicts stay sharp enough.
TRAINING = {"ML_IF_N_ESTIMATORS": 60}


@dataclass(frozen=True)
class Scored:
    models: dict[str, ModelVersion]

    def flagged(self) -> Transaction:
        return Transaction.objects.filter(flagged=True).order_by("-timestamp", "-id").first()

    def clear(self) -> Transaction:
        return Transaction.objects.filter(flagged=False).order_by("-timestamp", "-id").first()


def build_scored_history() -> Scored:
    """750 stored transactions of 30 steady accounts, both detectors trained on
    them and active, and every transaction scored."""
    store(habitual_items())
    results = models_train()
    stored_transactions_score()
    return Scored(models={r.model_version.algorithm: r.model_version for r in results})


TAKEOVER = {
    "transaction_id": "ATTACK1",
    "account_id": "AC00003",
    "amount": "9500.00",
    "timestamp": "2024-04-20T03:12:00",
    "location": "Anchorage",
    "device_id": "D999999",
    "ip_address": "203.0.113.9",
    "merchant_id": "M077",
    "login_attempts": "5",
    "account_balance": "120.00",
}


def takeover_data(**overrides: Any) -> dict[str, Any]:
    """Account AC00003 from a new device, IP and city, at night, for far more
    than it usually spends, after several failed logins (snake_case fields)."""
    return transaction_data(**{**TAKEOVER, **overrides})


def takeover(**overrides: Any) -> TransactionIn:
    return item(**{**TAKEOVER, **overrides})


def form_data(
    rows: Iterable[Mapping[str, Any]],
    *,
    algorithms: str = "both",
    store: bool = True,
    deleted: Iterable[int] = (),
) -> dict[str, str]:
    """The predict page's POST body for these transactions."""
    rows = list(rows)
    data = {
        "tx-TOTAL_FORMS": str(len(rows)),
        "tx-INITIAL_FORMS": "0",
        "tx-MIN_NUM_FORMS": "1",
        "tx-MAX_NUM_FORMS": "10",
        "options-algorithms": algorithms,
    }
    if store:
        data["options-store"] = "on"
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"tx-{index}-{name}"] = "" if value is None else str(value)
    for index in deleted:
        data[f"tx-{index}-DELETE"] = "on"
    return data


CSV_HEADER = [
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
]
_CSV_FIELDS = [
    "transaction_id",
    "account_id",
    "amount",
    "timestamp",
    "transaction_type",
    "location",
    "device_id",
    "ip_address",
    "merchant_id",
    "channel",
    "customer_age",
    "customer_occupation",
    "duration_seconds",
    "login_attempts",
    "account_balance",
    "previous_transaction_at",
]


def csv_bytes(rows: Iterable[Mapping[str, Any]], header: list[str] | None = None) -> bytes:
    """A CSV file in the public data set's format with these transactions."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header or CSV_HEADER)
    for row in rows:
        writer.writerow([row.get(field, "") or "" for field in _CSV_FIELDS])
    return out.getvalue().encode()
