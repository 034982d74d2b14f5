"""Test data for the pages: a scored history and transactions that stand out."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.test import override_settings

from detection.models import ModelVersion, Transaction
from detection.schema import TransactionIn
from detection.scoring import stored_transactions_score
from detection.training import models_train
from tests.factories import (
    CSV_HEADER,
    csv_row,
    csv_write,
    habitual_items,
    item,
    store,
    transaction_data,
)

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


@contextmanager
def module_scored_history(django_db_blocker: Any, artifacts: Path) -> Iterator[Scored]:
    """A scored history shared by a whole test module, rolled back at its end;
    its artifacts in ``artifacts``, which every test of the module must use."""
    with (
        django_db_blocker.unblock(),
        override_settings(ML_ARTIFACTS_DIR=artifacts, **TRAINING),
        transaction.atomic(),
    ):
        yield build_scored_history()
        transaction.set_rollback(True)


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


def tampered_copy(version: ModelVersion) -> ModelVersion:
    """The next version of ``version``'s algorithm, on the same artifact file
    but with a checksum that does not match it."""
    return ModelVersion.objects.create(
        algorithm=version.algorithm,
        version=version.version + 1,
        threshold=version.threshold,
        training_rows=version.training_rows,
        artifact_path=version.artifact_path,
        sha256="0" * 64,
        format_version=version.format_version,
        sklearn_version=version.sklearn_version,
        metrics=version.metrics,
        params=version.params,
        features=version.features,
    )


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


def csv_bytes(rows: Iterable[Mapping[str, Any]], header: list[str] | None = None) -> bytes:
    """A CSV file in the public data set's format with these transactions."""
    out = io.StringIO()
    csv_write(out, (csv_row(row) for row in rows), header or CSV_HEADER)
    return out.getvalue().encode()
