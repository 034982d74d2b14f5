"""Plain-words reasons: the signals that make a transaction stand out.

Each rule reads the features (and raw values) of a transaction and, when it
fires, gives a strength (for ordering) and a sentence an analyst can check
against the account's history on the transaction page.
"""

from __future__ import annotations

import numpy as np

from detection.features import Columns

MAX_REASONS = 5


def _fmt_ratio(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def explain(features: Columns, frame: Columns, merchant_frauds: np.ndarray) -> list[list[str]]:
    """Reasons for every row (aligned with ``features``/``frame``), strongest first."""
    n = len(merchant_frauds)
    history = features["account_history"] > 0
    amount_ratio = np.exp(features["amount_vs_account"])
    count_1h = np.expm1(features["count_1h"]).round().astype(int)
    login = features["login_attempts"].astype(int)
    funds = features["amount_to_funds"]
    hour_dev = features["hour_deviation"]
    merchant_z = features["merchant_amount_z"]
    # Sentences read single values: from lists, which index and format several
    # times faster than numpy arrays.
    ratios, counts, logins, shares = (
        amount_ratio.tolist(),
        count_1h.tolist(),
        login.tolist(),
        funds.tolist(),
    )
    frauds = merchant_frauds.tolist()
    location = frame["location"]
    merchant = frame["merchant_id"]

    # (mask, strength, sentence builder) — strengths put the most telling first.
    rules = [
        (
            history & (amount_ratio >= 3),
            np.log(np.maximum(amount_ratio, 1)),
            lambda i: f"amount is {_fmt_ratio(ratios[i])}x this account's typical amount",
        ),
        (
            features["new_device"] > 0,
            np.full(n, 2.2),
            lambda i: "first use of this device by the account",
        ),
        (
            features["new_ip"] > 0,
            np.full(n, 1.6),
            lambda i: "first use of this IP address by the account",
        ),
        (
            features["new_location"] > 0,
            np.full(n, 2.0),
            lambda i: f"first transaction from {location[i]} for this account",
        ),
        (
            features["new_merchant"] > 0,
            np.full(n, 0.8),
            lambda i: f"first payment to merchant {merchant[i]} by this account",
        ),
        (
            count_1h >= 3,
            count_1h / 2.0,
            lambda i: f"{counts[i]} transactions by this account in the hour before",
        ),
        (login >= 3, login / 2.0, lambda i: f"{logins[i]} login attempts"),
        (
            funds >= 0.75,
            funds * 2.5,
            lambda i: f"amount is {shares[i]:.0%} of the account's funds",
        ),
        (
            hour_dev >= 1.0,
            hour_dev,
            lambda i: "unusual time of day for this account",
        ),
        (
            merchant_z >= 3,
            merchant_z / 3.0,
            lambda i: f"amount is unusually high for merchant {merchant[i]}",
        ),
        (
            merchant_frauds > 0,
            2.0 + merchant_frauds,
            lambda i: (
                f"{frauds[i]} confirmed fraud{'s' if frauds[i] > 1 else ''} "
                f"at merchant {merchant[i]} in the last 30 days"
            ),
        ),
        (~history, np.full(n, 0.5), lambda i: "first transaction seen for this account"),
    ]
    masks = np.vstack([mask for mask, _, _ in rules])
    # Rules that did not fire sort after every one that did; ties keep the
    # rules' order. One sort for all rows.
    strengths = np.where(masks, np.vstack([strength for _, strength, _ in rules]), -np.inf)
    ranked = np.argsort(-strengths, axis=0, kind="stable").T.tolist()
    fired = np.minimum(masks.sum(axis=0), MAX_REASONS).tolist()
    sentences = [sentence for _, _, sentence in rules]
    return [
        [sentences[rule](i) for rule in ranked[i][: fired[i]]] if fired[i] else [] for i in range(n)
    ]
