"""Plain-words reasons: which rules fire, their sentences and their order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detection.reasons import MAX_REASONS, explain

# A row that trips no rule: known account, habitual amount, time and places.
QUIET = {
    "account_history": math.log1p(40),
    "amount_vs_account": 0.0,
    "count_1h": 0.0,
    "login_attempts": 1.0,
    "amount_to_funds": 0.1,
    "hour_deviation": 0.0,
    "merchant_amount_z": 0.0,
    "new_device": 0.0,
    "new_ip": 0.0,
    "new_location": 0.0,
    "new_merchant": 0.0,
}


def reasons_of(*rows: dict[str, float], frauds: list[int] | None = None) -> list[list[str]]:
    """explain() of rows given as their departures from QUIET."""
    features = {
        name: np.array([row.get(name, quiet) for row in rows], dtype=np.float64)
        for name, quiet in QUIET.items()
    }
    frame = {
        "location": np.array([f"City{i}" for i in range(len(rows))], dtype=object),
        "merchant_id": np.array([f"M{i:03d}" for i in range(len(rows))], dtype=object),
    }
    merchant_frauds = np.array(frauds or [0] * len(rows), dtype=np.int64)
    return explain(features, frame, merchant_frauds)


@pytest.mark.parametrize(
    ("departure", "sentence"),
    [
        ({"amount_vs_account": math.log(4.5)}, "amount is 4.5x this account's typical amount"),
        ({"amount_vs_account": math.log(1234.4)}, "amount is 1,234x this account's typical amount"),
        ({"new_device": 1.0}, "first use of this device by the account"),
        ({"new_ip": 1.0}, "first use of this IP address by the account"),
        ({"new_location": 1.0}, "first transaction from City0 for this account"),
        ({"new_merchant": 1.0}, "first payment to merchant M000 by this account"),
        ({"count_1h": math.log1p(4)}, "4 transactions by this account in the hour before"),
        ({"login_attempts": 5.0}, "5 login attempts"),
        ({"amount_to_funds": 0.834}, "amount is 83% of the account's funds"),
        ({"hour_deviation": 1.2}, "unusual time of day for this account"),
        ({"merchant_amount_z": 4.0}, "amount is unusually high for merchant M000"),
        ({"account_history": 0.0}, "first transaction seen for this account"),
    ],
)
def test_each_rule_says_what_it_saw(departure, sentence):
    assert reasons_of(departure) == [[sentence]]


def test_it_names_confirmed_frauds_at_the_merchant_in_the_singular_and_plural():
    assert reasons_of(QUIET, QUIET, frauds=[1, 3]) == [
        ["1 confirmed fraud at merchant M000 in the last 30 days"],
        ["3 confirmed frauds at merchant M001 in the last 30 days"],
    ]


def test_it_stays_quiet_below_each_threshold():
    assert reasons_of(
        QUIET,
        {"amount_vs_account": math.log(2.9), "count_1h": math.log1p(2), "login_attempts": 2.0},
        {"amount_to_funds": 0.74, "hour_deviation": 0.99, "merchant_amount_z": 2.9},
        # A large amount means nothing without history to compare it with.
        {"account_history": 0.0, "amount_vs_account": math.log(50)},
    ) == [[], [], [], ["first transaction seen for this account"]]


def test_it_puts_the_strongest_first_and_keeps_the_rules_order_on_ties():
    [reasons] = reasons_of(
        {
            "new_merchant": 1.0,  # 0.8
            "new_ip": 1.0,  # 1.6
            "login_attempts": 4.0,  # 2.0, tied with the new location, listed after it
            "new_location": 1.0,  # 2.0
            "new_device": 1.0,  # 2.2
        }
    )
    assert reasons == [
        "first use of this device by the account",
        "first transaction from City0 for this account",
        "4 login attempts",
        "first use of this IP address by the account",
        "first payment to merchant M000 by this account",
    ]


def test_it_gives_at_most_the_strongest_few_for_each_row_on_its_own():
    everything = {
        "amount_vs_account": math.log(20),  # 3.0
        "new_device": 1.0,  # 2.2
        "new_ip": 1.0,  # 1.6
        "new_location": 1.0,  # 2.0
        "new_merchant": 1.0,  # 0.8
        "count_1h": math.log1p(8),  # 4.0
        "login_attempts": 3.0,  # 1.5
        "hour_deviation": 1.1,  # 1.1
    }
    quiet, busy, device_only = reasons_of(QUIET, everything, {"new_device": 1.0})
    assert len(busy) == MAX_REASONS
    assert busy == [
        "8 transactions by this account in the hour before",
        "amount is 20.0x this account's typical amount",
        "first use of this device by the account",
        "first transaction from City1 for this account",
        "first use of this IP address by the account",
    ]
    assert quiet == []
    assert device_only == ["first use of this device by the account"]
