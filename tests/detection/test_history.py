from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from detection.features import COLUMNS
from detection.history import account_history, frame_from_queryset, merchant_recent
from detection.models import Transaction
from detection.store import transactions_insert
from tests.factories import item

pytestmark = pytest.mark.django_db

NOT_READ = {"transaction_id", "channel", "customer_age"}
FEATURE_INPUTS = [name for name in COLUMNS if name not in NOT_READ]


def when(day: int) -> datetime:
    return datetime(2024, 3, day, 12, tzinfo=UTC)


def test_it_reads_the_accounts_history_in_the_window_minus_the_excluded_ids():
    transactions_insert(
        items=[
            item(transaction_id="A1", account_id="AC1", timestamp="2024-03-01T12:00:00Z"),
            item(transaction_id="A2", account_id="AC1", timestamp="2024-03-05T12:00:00Z"),
            item(transaction_id="A3", account_id="AC1", timestamp="2024-03-09T12:00:00Z"),
            item(transaction_id="A4", account_id="AC1", timestamp="2024-03-06T12:00:00Z"),
            item(transaction_id="B1", account_id="AC2", timestamp="2024-03-05T12:00:00Z"),
            item(transaction_id="C1", account_id="AC3", timestamp="2024-03-05T12:00:00Z"),
        ]
    )
    history = account_history(
        account_ids=["AC1", "AC2"],
        since=when(2),
        before=when(9),
        exclude_transaction_ids=["A4"],
    )
    # A1 is before the window, A3 at its (open) end, A4 excluded, C1 another account.
    expected = frame_from_queryset(Transaction.objects.filter(transaction_id__in=["A2", "B1"]))
    order, expected_order = np.argsort(history["account_id"]), np.argsort(expected["account_id"])
    assert list(history["account_id"][order]) == ["AC1", "AC2"]
    for name in FEATURE_INPUTS:
        np.testing.assert_array_equal(history[name][order], expected[name][expected_order])
    # What the features never read is left blank rather than read.
    assert set(history) == set(expected)
    np.testing.assert_array_equal(history["pk"][order], expected["pk"][expected_order])


def test_it_reads_no_rows_as_empty_columns():
    history = account_history(account_ids=["NOBODY"], since=when(1), before=when(2))
    assert all(len(values) == 0 for values in history.values())


def test_it_reads_other_accounts_novel_transactions_at_the_merchants_in_the_window():
    def at(tx_id: str, account: str, merchant: str, day: int) -> object:
        return item(
            transaction_id=tx_id,
            account_id=account,
            merchant_id=merchant,
            timestamp=f"2024-03-{day:02d}T12:00:00Z",
        )

    transactions_insert(
        items=[
            at("NOVEL", "AC2", "M1", 5),
            at("PLAIN", "AC2", "M1", 5),  # scored: no novelty
            at("UNSCORED", "AC3", "M1", 5),  # never scored: NULL
            at("EARLY", "AC3", "M1", 1),
            at("OWN", "AC1", "M1", 5),  # the requesting account's own
            at("ELSEWHERE", "AC3", "M2", 5),
        ]
    )
    for tx_id, novelty in {"NOVEL": 2.5, "PLAIN": 0.0, "EARLY": 4.0, "OWN": 3.0}.items():
        Transaction.objects.filter(transaction_id=tx_id).update(merchant_novelty=novelty)

    recent = merchant_recent(
        merchant_ids=["M1"], since=when(2), before=when(9), exclude_account_ids=["AC1"]
    )

    # Rows without novelty add nothing to merchant_burst, so they are not read.
    assert list(recent["merchant_id"]) == ["M1"]
    assert list(recent["novelty"]) == [2.5]
    assert list(recent["ts"]) == [int(when(5).timestamp())]
