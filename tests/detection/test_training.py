from __future__ import annotations

import numpy as np
import pytest

from detection.features import MODEL_FEATURES
from detection.models import ModelVersion, ReviewStatus, Transaction
from detection.reviews import review_set
from detection.training import NotEnoughData, models_train, training_data
from tests.factories import habitual_items, store

pytestmark = pytest.mark.django_db


def test_it_records_everything_about_a_trained_version(trained):
    mv = ModelVersion.objects.get(algorithm="isolation_forest")
    assert mv.is_active and mv.version == 1
    assert mv.training_rows == 750
    assert mv.params["contamination"] == 0.05
    assert mv.features and "amount_vs_account" in mv.features
    assert 0.03 <= mv.metrics["training_anomaly_rate"] <= 0.07
    assert sum(mv.metrics["score_histogram"]["counts"]) == 750


def test_it_sets_the_threshold_at_the_contamination_quantile(history, settings):
    [result] = models_train(algorithms=["isolation_forest"], contamination=0.2)
    assert result.anomaly_rate == pytest.approx(0.2, abs=0.01)
    assert result.model_version.params["contamination"] == 0.2


def test_it_leaves_confirmed_fraud_out_of_training_but_keeps_false_positives(history, staff):
    all_rows = len(training_data(since=None, until=None).X)
    fraud, false_positive = Transaction.objects.order_by("id")[:2]
    review_set(transaction=fraud, status=ReviewStatus.CONFIRMED_FRAUD, reviewer=staff)
    review_set(transaction=false_positive, status=ReviewStatus.FALSE_POSITIVE, reviewer=staff)
    assert len(training_data(since=None, until=None).X) == all_rows - 1


def test_it_trains_on_a_time_window_with_history_before_it(history):
    since, until = (
        Transaction.objects.order_by("timestamp").values_list("timestamp", flat=True)[300],
        Transaction.objects.order_by("timestamp").values_list("timestamp", flat=True)[600],
    )
    data = training_data(since=since, until=until)
    assert len(data.X) == 300
    # The window's first rows still see the history before "since".
    history_column = MODEL_FEATURES.index("account_history")
    assert np.count_nonzero(data.X[:, history_column]) > 250


def test_it_samples_each_tree_from_at_most_the_rows_there_are(history, settings, recwarn):
    settings.ML_IF_MAX_SAMPLES = 1000
    [result] = models_train(algorithms=["isolation_forest"])
    assert result.model_version.params["max_samples"] == 750
    # scikit-learn would have warned that it used 750, at every training.
    assert not [w for w in recwarn if "max_samples" in str(w.message)]


def test_it_refuses_to_train_on_too_few_transactions(db):
    store(habitual_items(accounts=2, per_account=10))
    with pytest.raises(NotEnoughData, match="20 transactions"):
        models_train()


def test_it_numbers_versions_per_algorithm(history):
    models_train()
    models_train(algorithms=["local_outlier_factor"])
    versions = sorted(ModelVersion.objects.values_list("algorithm", "version"))
    assert versions == [
        ("isolation_forest", 1),
        ("local_outlier_factor", 1),
        ("local_outlier_factor", 2),
    ]
