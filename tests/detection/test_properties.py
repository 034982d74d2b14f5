"""Properties over generated input: any transaction within the schema's
ranges is accepted with its values intact, its features are finite, and both
detectors score it (stored, next to real history) with finite scores."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detection.features import compute_features
from detection.history import frame_from_items
from detection.models import Transaction
from detection.schema import ALIASES, ID_PATTERN, validate_transaction
from detection.scoring import lookback_seconds, transactions_score

identifiers = st.from_regex(ID_PATTERN, fullmatch=True)
# Printable text: the schema refuses control characters, and strips spaces.
labels = (
    st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=64)
    .map(str.strip)
    .filter(bool)
)
offsets = (
    st.none()
    | st.just(UTC)
    | st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
)
# A day inside the bounds on each side, so no offset moves a time past them.
moments = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2099, 12, 30),
    timezones=offsets,
)


def money(maximum: int) -> st.SearchStrategy[Any]:
    amounts = st.decimals(min_value=0, max_value=maximum, places=2)
    # JSON sends a number or a string; both are read as the same amount.
    return amounts.flatmap(lambda d: st.sampled_from([str(d), float(d), d]))


@st.composite
def transactions(draw, transaction_id: str | None = None) -> dict[str, Any]:
    values = {
        "transaction_id": transaction_id or draw(identifiers),
        "account_id": draw(identifiers),
        "amount": draw(money(1_000_000)),
        "timestamp": draw(moments).isoformat(),
        "transaction_type": draw(st.sampled_from(["Credit", "Debit"])),
        "location": draw(labels),
        "device_id": draw(identifiers),
        "ip_address": str(draw(st.ip_addresses())),
        "merchant_id": draw(identifiers),
        "channel": draw(st.sampled_from(["Online", "ATM", "Branch"])),
        "customer_age": draw(st.integers(18, 120)),
        "customer_occupation": draw(
            st.sampled_from(["Doctor", "Student", "Retired", "Engineer", "Other"])
        ),
        "duration_seconds": draw(st.integers(0, 10_000)),
        "login_attempts": draw(st.integers(0, 10)),
        "account_balance": draw(money(10_000_000)),
        "previous_transaction_at": draw(st.none() | st.just("") | moments.map(str)),
    }
    # Each field under its own name or one of the earlier system's.
    return {draw(st.sampled_from([name, *ALIASES[name]])): value for name, value in values.items()}


@st.composite
def batches(draw, max_size: int = 20) -> list[dict[str, Any]]:
    ids = draw(st.lists(identifiers, min_size=1, max_size=max_size, unique=True))
    # A few accounts, so batch items share history with each other too.
    accounts = draw(st.lists(identifiers, min_size=1, max_size=3))
    items = []
    for transaction_id in ids:
        item = draw(transactions(transaction_id=transaction_id))
        key = next(k for k in item if k in ("account_id", "AccountID"))
        item[key] = draw(st.sampled_from(accounts))
        items.append(item)
    return items


@given(transactions())
def test_it_accepts_any_transaction_within_the_schemas_ranges(data):
    given_values = {
        canonical: data[name]
        for canonical, aliases in ALIASES.items()
        for name in (canonical, *aliases)
        if name in data
    }

    item = validate_transaction(data)

    assert item.transaction_id == given_values["transaction_id"]
    assert item.amount == Decimal(str(given_values["amount"]))
    assert item.account_balance == Decimal(str(given_values["account_balance"]))
    assert item.location == given_values["location"]
    assert item.customer_age == given_values["customer_age"]
    assert item.timestamp == datetime.fromisoformat(given_values["timestamp"]).replace(
        tzinfo=datetime.fromisoformat(given_values["timestamp"]).tzinfo or UTC
    )
    assert item.timestamp.tzinfo is UTC


@given(batches(max_size=40))
def test_it_computes_finite_features_for_any_valid_batch(batch):
    items = [validate_transaction(data) for data in batch]

    features = compute_features(
        frame_from_items(items), lookback=lookback_seconds(), merchant_stats=None
    )

    for name, values in features.items():
        assert len(values) == len(items)
        assert np.isfinite(values).all(), name


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    # The trained models are read, never changed; each example's stored rows
    # only add history for the next, which is what a live system sees too.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batch=batches())
def test_it_stores_and_scores_any_valid_batch_with_finite_scores(trained, batch):
    items = [validate_transaction(data) for data in batch]

    results = transactions_score(items=items)

    assert [r.transaction_id for r in results] == [i.transaction_id for i in items]
    for result in results:
        assert set(result.predictions) == {"isolation_forest", "local_outlier_factor"}
        for score in result.predictions.values():
            assert math.isfinite(score.score)
            assert score.is_anomaly == (score.score >= score.threshold)
        assert result.flagged == all(s.is_anomaly for s in result.predictions.values())
    assert Transaction.objects.filter(
        transaction_id__in=[i.transaction_id for i in items]
    ).count() == len(items)
