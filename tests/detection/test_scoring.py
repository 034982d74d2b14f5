from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from detection.features import compute_features
from detection.history import frame_from_queryset
from detection.models import Algorithm, Prediction, ReviewStatus, Transaction
from detection.registry import NoActiveModel, active_detectors
from detection.reviews import review_set
from detection.scoring import (
    SPLIT_ROWS,
    detector_features,
    lookback_seconds,
    score_rows,
    stored_transactions_score,
    transactions_score,
)
from detection.store import transactions_insert
from detection.training import models_train
from tests.factories import habitual_data, item

pytestmark = pytest.mark.django_db


def takeover(transaction_id="ATTACK1", **overrides):
    """A transaction of account AC00003 from a new device, IP and city, at night,
    for far more than it usually spends, after several failed logins."""
    values = {
        "transaction_id": transaction_id,
        "account_id": "AC00003",
        "amount": "9500.00",
        "timestamp": "2024-04-20T03:12:00Z",
        "location": "Anchorage",
        "device_id": "D999999",
        "ip_address": "203.0.113.9",
        "merchant_id": "M077",
        "login_attempts": 5,
        "account_balance": "120.00",
    }
    return item(**(values | overrides))


def test_it_flags_an_account_takeover_with_reasons(trained):
    [result] = transactions_score(items=[takeover()], persist=False)
    assert result.flagged
    assert set(result.predictions) == {"isolation_forest", "local_outlier_factor"}
    for prediction in result.predictions.values():
        assert prediction.is_anomaly
        assert prediction.score >= prediction.threshold
    assert "first use of this device by the account" in result.reasons
    assert any("x this account's typical amount" in reason for reason in result.reasons)


def test_it_does_not_flag_a_habitual_transaction(trained, history):
    last = history[-1]
    habitual = item(
        **habitual_data(last, transaction_id="HABIT1", timestamp="2024-04-20T12:00:00Z")
    )
    [result] = transactions_score(items=[habitual], persist=False)
    assert not result.flagged


def test_it_scores_the_same_transaction_alike_online_and_in_batch(trained):
    [online] = transactions_score(items=[takeover()], persist=True)
    stored_transactions_score(rescore=True)
    batch = {
        p.model_version.algorithm: p
        for p in Prediction.objects.filter(transaction__transaction_id="ATTACK1").select_related(
            "model_version"
        )
    }
    for algorithm, prediction in online.predictions.items():
        assert batch[algorithm].score == pytest.approx(prediction.score, rel=1e-12)
        assert batch[algorithm].reasons == online.reasons


def test_it_sees_other_accounts_spending_at_the_merchant_alike_online_and_in_batch(trained):
    # The day before, three other accounts pay M777, new to each of them, far
    # above their habits: stored with merchant novelty, which online scoring
    # reads back for the merchant_burst feature; batch scoring recomputes it.
    spree = [
        item(
            transaction_id=f"SPREE{n}",
            account_id=f"AC0000{n}",
            merchant_id="M777",
            amount="4000.00",
            timestamp=f"2024-04-19T1{n}:00:00Z",
        )
        for n in (4, 5, 6)
    ]
    transactions_score(items=spree, persist=True)
    assert Transaction.objects.filter(merchant_id="M777", merchant_novelty__gt=0).count() == 3

    [online] = transactions_score(items=[takeover(merchant_id="M777")], persist=True)
    [alone] = transactions_score(items=[takeover("ELSEWHERE", merchant_id="M778")], persist=False)
    stored_transactions_score(rescore=True)

    for prediction in Prediction.objects.filter(transaction__transaction_id="ATTACK1"):
        expected = online.predictions[prediction.model_version.algorithm].score
        assert prediction.score == pytest.approx(expected, rel=1e-12)
    # The spree counted: the same transaction at a quiet merchant scores lower.
    assert (
        alone.predictions["isolation_forest"].score < online.predictions["isolation_forest"].score
    )


def test_it_scores_a_time_with_a_fraction_of_a_second_alike_online_and_in_batch(trained):
    # Online, a new transaction is scored as sent; in batch, as the database
    # gives it back: both must round 03:12:00.7 down to the same second.
    when = "2024-04-20T03:12:00.700Z"
    [online] = transactions_score(items=[takeover(timestamp=when)], persist=True)
    stored_transactions_score(rescore=True)
    for prediction in Prediction.objects.filter(transaction__transaction_id="ATTACK1"):
        expected = online.predictions[prediction.model_version.algorithm].score
        assert prediction.score == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("algorithms", [None, ("local_outlier_factor",)], ids=["both", "lof"])
def test_it_scores_a_large_batch_alike_split_between_two_threads_or_not(trained, algorithms):
    # Beside Isolation Forest the helper takes two thirds of LOF's rows, alone
    # half.
    frame = frame_from_queryset(Transaction.objects.all())
    detectors = active_detectors(algorithms)
    features = detector_features(detectors, frame)
    assert len(frame["pk"]) >= SPLIT_ROWS
    split = score_rows(detectors, features, split=True, record=False)
    whole = score_rows(detectors, features, record=False)
    for algorithm in detectors:
        np.testing.assert_array_equal(split[algorithm], whole[algorithm])


@pytest.mark.django_db(transaction=True)
def test_it_scores_a_large_batch_alike_online_and_in_batch(trained, history):
    # Many accounts and rows: the history comes from the worker's copy and
    # LOF's rows are split between two threads. Twice, so the second batch's
    # history is read from the copy, not the database.
    for batch in range(2):
        items = [
            item(
                **habitual_data(
                    last,
                    transaction_id=f"LARGE{batch}-{n}",
                    timestamp=f"2024-04-2{batch}T{n % 24:02d}:{n % 60:02d}:00Z",
                )
                | {"amount": f"{float(last.amount) * (1 + n % 7):.2f}"}
            )
            for n, last in enumerate(history[::2][:300])
        ]
        online = transactions_score(items=items, persist=True)
    stored_transactions_score(rescore=True)
    stored = {
        (p.transaction.transaction_id, p.model_version.algorithm): p.score
        for p in Prediction.objects.filter(
            transaction__transaction_id__startswith="LARGE1-"
        ).select_related("transaction", "model_version")
    }
    assert len(stored) == 2 * len(online)
    for result in online:
        for algorithm, prediction in result.predictions.items():
            expected = stored[(result.transaction_id, algorithm)]
            assert prediction.score == pytest.approx(expected, rel=1e-12)


def test_it_scores_a_batch_of_new_and_stored_ids_each_as_stored(trained):
    transactions_score(items=[takeover("KNOWN", login_attempts=5)], persist=True)
    results = transactions_score(
        items=[takeover("FRESH"), takeover("KNOWN", login_attempts=0, amount="1.00")],
        persist=True,
    )
    assert [r.transaction_id for r in results] == ["FRESH", "KNOWN"]
    assert [r.pk for r in results] == [
        Transaction.objects.get(transaction_id=tx_id).pk for tx_id in ("FRESH", "KNOWN")
    ]
    # KNOWN is scored as first stored (5 logins, 9,500), not as re-sent.
    assert "5 login attempts" in results[1].reasons
    alone = transactions_score(items=[takeover("KNOWN")], persist=False)
    assert results[1].predictions["isolation_forest"].score == pytest.approx(
        alone[0].predictions["isolation_forest"].score
    )


def test_it_gives_each_version_the_features_of_its_own_merchant_profile(trained):
    frame = frame_from_queryset(Transaction.objects.all())
    together = detector_features(active_detectors(), frame)
    # Trained together: one profile, one feature pass.
    assert len(together.by_profile) == 1

    models_train(algorithms=["local_outlier_factor"])
    detectors = active_detectors()
    apart = detector_features(detectors, frame)
    assert len(apart.by_profile) == 2
    for algorithm, detector in detectors.items():
        own = compute_features(
            frame, lookback=lookback_seconds(), merchant_stats=detector.merchant_stats
        )
        assert (apart.of(algorithm)["amount_z_account"] == own["amount_z_account"]).all()
    # Reasons and stored novelty follow the newest version.
    assert apart.for_reasons is apart.of("local_outlier_factor")


def test_it_stores_a_transaction_once_and_scores_the_stored_record(trained):
    first = transactions_score(items=[takeover()], persist=True)
    # A retry with different values must not overwrite what was stored.
    counted = predictions_counted()
    retry = transactions_score(items=[takeover(login_attempts=1)], persist=True)
    # Taken for new, then found stored by its insert and scored again as
    # stored: counted once.
    after = predictions_counted()
    assert {algorithm: after[algorithm] - counted[algorithm] for algorithm in after} == {
        algorithm: 1.0 for algorithm in after
    }
    assert Transaction.objects.filter(transaction_id="ATTACK1").count() == 1
    assert Transaction.objects.get(transaction_id="ATTACK1").login_attempts == 5
    assert (
        retry[0].predictions["isolation_forest"].score
        == first[0].predictions["isolation_forest"].score
    )
    assert Prediction.objects.filter(transaction__transaction_id="ATTACK1").count() == 2
    assert Transaction.objects.get(transaction_id="ATTACK1").flagged is True


def predictions_counted() -> dict[str, float]:
    """Transactions each model has scored, by the prediction metrics."""
    return {
        algorithm: sum(
            REGISTRY.get_sample_value(
                "anomaly_predictions_total", {"model": algorithm, "verdict": verdict}
            )
            or 0.0
            for verdict in ("anomaly", "normal")
        )
        for algorithm in Algorithm.values
    }


def test_it_stores_a_new_single_transaction_without_looking_its_id_up_first(trained):
    with CaptureQueriesContext(connection) as queries:
        [result] = transactions_score(items=[takeover("NEWONE")], persist=True)
    assert result.stored and result.pk == Transaction.objects.get(transaction_id="NEWONE").pk
    # The history read leaves the transaction out by its id too, further on
    # in its WHERE clause; a look-up starts with it.
    assert not [q["sql"] for q in queries if 'WHERE "transaction_id"' in q["sql"]]


def test_it_scores_the_stored_record_when_another_request_stores_the_id_first(trained):
    # Between this request's look-up (not stored) and its write, another
    # request stores the same id with other values: this one must answer with
    # the stored record, as if it had found it at the look-up.
    theirs = takeover("RACED", amount="12.00", login_attempts=0)
    mine = takeover("RACED", amount="9500.00", login_attempts=5)
    raced = []

    def store_theirs_first(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if not raced and sql.startswith('INSERT INTO "detection_transaction"'):
            raced.append(True)
            transactions_insert(items=[theirs])
        return execute(sql, params, many, context)

    counted = predictions_counted()
    with connection.execute_wrapper(store_theirs_first):
        [result] = transactions_score(items=[mine, takeover("OTHER")], persist=True)[:1]

    assert raced
    # The lost attempt's scores are not counted: two transactions, once each.
    after = predictions_counted()
    assert {algorithm: after[algorithm] - counted[algorithm] for algorithm in after} == {
        algorithm: 2.0 for algorithm in after
    }
    stored = Transaction.objects.get(transaction_id="RACED")
    assert stored.amount == Decimal("12.00")
    assert "5 login attempts" not in result.reasons
    assert result.pk == stored.pk
    [alone] = transactions_score(items=[theirs], persist=False)
    for algorithm, prediction in result.predictions.items():
        assert prediction.score == pytest.approx(alone.predictions[algorithm].score)
    assert Prediction.objects.filter(transaction=stored).count() == 2
    assert Transaction.objects.get(transaction_id="OTHER").flagged is not None


def test_it_stores_nothing_without_persist(trained):
    before = Transaction.objects.count()
    transactions_score(items=[takeover()], persist=False)
    assert Transaction.objects.count() == before
    assert not Prediction.objects.filter(transaction__transaction_id="ATTACK1").exists()


def test_it_answers_in_input_order(trained):
    items = [takeover(f"ORDER{i}") for i in (3, 1, 2)]
    results = transactions_score(items=items, persist=True)
    assert [r.transaction_id for r in results] == ["ORDER3", "ORDER1", "ORDER2"]


def test_it_gives_each_result_alike_by_index_slice_and_iteration(trained):
    items = [takeover(f"EACH{i}") for i in range(4)]
    results = transactions_score(items=items, persist=True)
    assert len(results) == 4
    every = list(results)
    assert results[-1] == every[3] and results[1:3] == every[1:3]
    stored = Transaction.objects.get(transaction_id="EACH2")
    assert every[2].pk == stored.pk and every[2].stored
    for algorithm, score in every[2].predictions.items():
        prediction = Prediction.objects.get(transaction=stored, model_version__algorithm=algorithm)
        assert score.algorithm == algorithm
        assert score.model_version_id == prediction.model_version_id
        assert (score.score, score.is_anomaly) == (prediction.score, prediction.is_anomaly)
    with pytest.raises(IndexError):
        results[4]


def test_it_writes_predictions_in_key_then_version_order_whatever_the_input_order(trained):
    # Every request takes its row locks in one order, so two racing requests
    # never wait on each other in a circle (PostgreSQL). New predictions get
    # their ids in the order they are written.
    items = [takeover(f"KEYS{i}") for i in (5, 2, 4, 1, 3)]

    transactions_score(items=items, persist=True)

    written = Prediction.objects.filter(transaction__transaction_id__startswith="KEYS")
    by_id = list(written.order_by("pk").values_list("transaction_id", "model_version_id"))
    assert len(by_id) == 10
    assert by_id == sorted(by_id)


def test_it_scores_with_one_model_when_asked(trained):
    [result] = transactions_score(items=[takeover()], algorithms=("isolation_forest",))
    assert set(result.predictions) == {"isolation_forest"}
    # One model's verdict alone does not overwrite the stored two-model verdict.
    assert Transaction.objects.get(transaction_id="ATTACK1").flagged is None


def test_it_applies_the_configured_rule(trained, settings):
    borderline = takeover(login_attempts=1, amount="400.00", account_balance="9000.00")
    both = transactions_score(items=[borderline], persist=False, rule="both")[0]
    either = transactions_score(items=[borderline], persist=False, rule="either")[0]
    verdicts = [p.is_anomaly for p in both.predictions.values()]
    assert both.flagged == all(verdicts)
    assert either.flagged == any(verdicts)
    settings.ML_FLAG_RULE = "either"
    assert transactions_score(items=[borderline], persist=False)[0].flagged == any(verdicts)


def test_it_sees_history_stored_by_earlier_requests(trained):
    transactions_score(items=[takeover("FIRST")], persist=True)
    [second] = transactions_score(
        items=[takeover("SECOND", timestamp="2024-04-20T03:20:00Z")], persist=False
    )
    assert "first use of this device by the account" not in second.reasons
    assert "first transaction from Anchorage for this account" not in second.reasons


def test_it_names_confirmed_fraud_at_the_merchant(trained, staff):
    transactions_score(items=[takeover("FRAUD1")], persist=True)
    review_set(
        transaction=Transaction.objects.get(transaction_id="FRAUD1"),
        status=ReviewStatus.CONFIRMED_FRAUD,
        reviewer=staff,
    )
    [later] = transactions_score(
        items=[takeover("FRAUD2", account_id="AC00005", timestamp="2024-04-21T10:00:00Z")],
        persist=False,
    )
    assert "1 confirmed fraud at merchant M077 in the last 30 days" in later.reasons


def test_it_refuses_to_score_without_active_models(history):
    with pytest.raises(NoActiveModel):
        transactions_score(items=[takeover()], persist=True)
    assert not Transaction.objects.filter(transaction_id="ATTACK1").exists()


def test_it_resumes_batch_scoring_where_it_stopped(trained):
    total = Transaction.objects.count()
    assert stored_transactions_score().scored == total
    Prediction.objects.filter(transaction__in=Transaction.objects.all()[:100]).delete()
    summary = stored_transactions_score()
    assert summary.scored == 100
    assert summary.skipped == total - 100
    again = stored_transactions_score()
    assert again.scored == 0
    rescored = stored_transactions_score(rescore=True)
    assert rescored.scored == total
    assert Prediction.objects.count() == 2 * total


@pytest.mark.parametrize("rule", ["both", "either"])
def test_it_stores_the_verdict_of_both_models_when_lof_scores_during_the_insert(
    trained, history, settings, rule
):
    # From SPLIT_ROWS rows on, a stored batch goes in with Isolation Forest's
    # verdict under the rule while LOF scores in the helper thread; the rows
    # LOF overturns are corrected before the commit.
    settings.ML_FLAG_RULE = rule
    items = [
        item(
            **habitual_data(
                last,
                transaction_id=f"MIXED-{n}",
                timestamp=(last.timestamp + timedelta(hours=20 + n % 7)).isoformat(),
                login_attempts=n % 3,
            )
            | {"amount": f"{float(last.amount) * (1 + n % 6 * 0.6):.2f}"}
        )
        for n, last in enumerate(history[::3][:SPLIT_ROWS])
    ]
    results = transactions_score(items=items, persist=True)

    verdicts = [
        (
            r.predictions["isolation_forest"].is_anomaly,
            r.predictions["local_outlier_factor"].is_anomaly,
        )
        for r in results
    ]
    # Both ways of disagreeing are there, so some rows went in with a verdict
    # LOF then changed.
    assert (True, False) in verdicts and (False, True) in verdicts
    stored = dict(
        Transaction.objects.filter(transaction_id__startswith="MIXED-").values_list(
            "transaction_id", "flagged"
        )
    )
    assert stored == {r.transaction_id: r.flagged for r in results}
    combine = all if rule == "both" else any
    assert [r.flagged for r in results] == [combine(pair) for pair in verdicts]
