from __future__ import annotations

import numpy as np
import pytest

from detection.detectors import (
    Detector,
    FastIsolationForest,
    FastLof,
    build_pipeline,
    sklearn_scores,
)
from detection.features import MerchantStats

PARAMS = {
    "n_estimators": 50,
    "max_samples": 128,
    "contamination": 0.05,
    "random_state": 1,
    "n_neighbors": 10,
}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(600, 5))
    # Repeated values and far outliers, as real features have.
    train[:50, 2] = 0.0
    probe = np.vstack([rng.normal(size=(200, 5)), rng.normal(6, 1, size=(20, 5)), train[:5]])
    return train, probe


@pytest.mark.parametrize("algorithm", ["isolation_forest", "local_outlier_factor"])
def test_it_scores_exactly_like_scikit_learn(algorithm, data):
    train, probe = data
    pipeline = build_pipeline(algorithm, PARAMS).fit(train)
    detector = Detector(
        algorithm=algorithm,
        version_id=1,
        version=1,
        threshold=0.5,
        features=(),
        pipeline=pipeline,
        merchant_stats=MerchantStats({}, {}, 0.0, 1.0),
    )
    np.testing.assert_allclose(detector.score(probe), sklearn_scores(pipeline, probe), rtol=1e-10)
    np.testing.assert_allclose(
        detector.score(probe[:1]), sklearn_scores(pipeline, probe[:1]), rtol=1e-10
    )


def test_it_makes_higher_scores_mean_more_anomalous(data):
    train, probe = data
    for algorithm in ("isolation_forest", "local_outlier_factor"):
        pipeline = build_pipeline(algorithm, PARAMS).fit(train)
        scores = sklearn_scores(pipeline, probe)
        assert scores[200:220].mean() > scores[:200].mean()


def test_it_walks_forests_in_chunks_without_changing_scores(data):
    train, probe = data
    forest = build_pipeline("isolation_forest", PARAMS).fit(train).named_steps["detector"]
    fast = FastIsolationForest(forest)
    np.testing.assert_array_equal(fast.walk(probe, chunk=7), fast.walk(probe, chunk=4096))
    np.testing.assert_allclose(fast.walk(probe), fast.score(probe), rtol=1e-10)


def test_its_per_tree_path_for_large_batches_is_bit_for_bit_scikit_learn(data):
    train, probe = data
    forest = build_pipeline("isolation_forest", PARAMS).fit(train).named_steps["detector"]
    fast = FastIsolationForest(forest)
    assert len(probe) > FastIsolationForest.SMALL_BATCH
    np.testing.assert_array_equal(fast.score(probe), -forest.score_samples(probe))


def test_it_scores_small_and_large_lof_batches_alike(data):
    train, probe = data
    lof = build_pipeline("local_outlier_factor", PARAMS).fit(train)
    fast = FastLof(lof.named_steps["detector"])
    scaled = lof.named_steps["scale"].transform(probe)
    small = np.concatenate([fast.score(scaled[i : i + 10]) for i in range(0, len(scaled), 10)])
    assert len(scaled) > FastLof.SMALL_BATCH
    np.testing.assert_allclose(small, fast.score(scaled), rtol=1e-10)


def test_it_refuses_an_unknown_algorithm():
    with pytest.raises(ValueError, match="unknown algorithm"):
        build_pipeline("one_class_svm", PARAMS)
