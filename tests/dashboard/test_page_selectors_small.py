"""Page selectors on a handful of hand-made transactions (no module data)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from detection import selectors
from detection.models import Transaction
from tests.factories import item, store

pytestmark = pytest.mark.django_db


def test_it_has_no_rates_without_data(db):
    counts = selectors.transaction_counts()
    assert counts.total == 0
    assert counts.flagged_rate is None
    assert counts.flag_precision is None
    assert selectors.transactions_by_day() == []


def test_it_counts_every_day_up_to_the_newest_transaction(db):
    store(
        [
            item(transaction_id="D1", timestamp="2024-03-01T23:59:00Z"),
            item(transaction_id="D2", timestamp="2024-03-03T00:00:00Z"),
            item(transaction_id="D3", timestamp="2024-03-03T12:00:00Z"),
        ]
    )
    Transaction.objects.filter(transaction_id="D3").update(flagged=True)
    days = selectors.transactions_by_day(days=3)
    assert [(d.day, d.total, d.flagged) for d in days] == [
        (date(2024, 3, 1), 1, 0),
        (date(2024, 3, 2), 0, 0),
        (date(2024, 3, 3), 2, 1),
    ]
    assert days[2].flagged_rate == 0.5
    assert days[1].flagged_rate == 0.0


def test_it_gives_the_history_before_a_transaction_excluding_it_and_later_ones(db):
    base = datetime(2024, 3, 1, 12, tzinfo=UTC)
    store(
        [
            item(transaction_id=f"H{i}", timestamp=(base + timedelta(hours=i)).isoformat())
            for i in range(5)
        ]
        + [item(transaction_id="TWIN", timestamp=(base + timedelta(hours=2)).isoformat())]
    )
    current = Transaction.objects.get(transaction_id="TWIN")
    history = selectors.account_recent_history(transaction=current, limit=10)
    # H2 shares TWIN's time but was stored first: it counts as before.
    assert [tx.transaction_id for tx in history] == ["H2", "H1", "H0"]
