"""Training both detectors on the stored transactions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from detection import metrics
from detection.detectors import Detector, build_pipeline
from detection.features import (
    MODEL_FEATURES,
    MerchantStats,
    columns_take,
    compute_features,
    feature_matrix,
    needs_calendar,
)
from detection.history import frame_from_queryset
from detection.models import Algorithm, ModelVersion, ReviewStatus, Transaction
from detection.registry import (
    FORMAT_VERSION,
    artifact_save,
    model_version_activate,
    sklearn_version,
)

log = structlog.get_logger("detection")

# Scores of this many training rows set the threshold and the stored score
# histogram; 20,000 rows pin a 95th percentile to about ±0.3 percentage points.
_THRESHOLD_SAMPLE = 20_000


class NotEnoughData(Exception):
    pass


@dataclass(frozen=True)
class TrainingResult:
    model_version: ModelVersion
    rows: int
    seconds: float
    threshold: float
    anomaly_rate: float


def default_params(algorithm: str, contamination: float | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "contamination": contamination if contamination is not None else settings.ML_CONTAMINATION,
        "random_state": settings.ML_RANDOM_STATE,
        "lookback_days": settings.ML_HISTORY_DAYS,
    }
    if algorithm == Algorithm.ISOLATION_FOREST:
        params |= {
            "n_estimators": settings.ML_IF_N_ESTIMATORS,
            "max_samples": settings.ML_IF_MAX_SAMPLES,
        }
    else:
        params |= {
            "n_neighbors": settings.ML_LOF_N_NEIGHBORS,
            "max_training_rows": settings.ML_LOF_MAX_TRAINING_ROWS,
        }
    return params


@dataclass
class TrainingData:
    X: np.ndarray
    merchant_stats: MerchantStats
    since: datetime | None
    until: datetime | None


def training_data(*, since: datetime | None, until: datetime | None) -> TrainingData:
    """Features of every stored transaction in [since, until) that analysts
    have not confirmed as fraud. History before ``since`` is read too, so the
    first rows of the window get the same features they got when scored."""
    lookback = timedelta(days=settings.ML_HISTORY_DAYS)
    queryset = Transaction.objects.all()
    if since is not None:
        queryset = queryset.filter(timestamp__gte=since - lookback)
    if until is not None:
        queryset = queryset.filter(timestamp__lt=until)
    frame = frame_from_queryset(queryset, features_only=True)
    confirmed = list(
        Transaction.objects.filter(review__status=ReviewStatus.CONFIRMED_FRAUD).values_list(
            "pk", flat=True
        )
    )
    keep = ~np.isin(frame["pk"], np.fromiter(confirmed, np.int64, len(confirmed)))
    if since is not None:
        keep &= frame["ts"] >= int(since.timestamp())
    if keep.sum() < 50:
        raise NotEnoughData(f"{int(keep.sum())} transactions to train on; at least 50 are needed")
    merchant_stats = MerchantStats.fit(
        frame["merchant_id"][keep], frame["amount"][keep], frame["account_id"][keep]
    )
    features = compute_features(
        frame,
        lookback=int(lookback.total_seconds()),
        merchant_stats=merchant_stats,
        calendar=needs_calendar(MODEL_FEATURES),
    )
    X = feature_matrix(columns_take(features, keep))
    return TrainingData(X=X, merchant_stats=merchant_stats, since=since, until=until)


def _next_version(algorithm: str) -> int:
    latest = ModelVersion.objects.filter(algorithm=algorithm).aggregate(v=Max("version"))["v"]
    return (latest or 0) + 1


def model_train(
    *,
    algorithm: str,
    data: TrainingData,
    contamination: float | None = None,
    activate: bool = True,
) -> TrainingResult:
    """Fit one detector on prepared training data, save and record it."""
    started = time.perf_counter()
    params = default_params(algorithm, contamination)
    rng = np.random.default_rng(params["random_state"])
    X = data.X
    fit_rows = X
    if algorithm == Algorithm.LOCAL_OUTLIER_FACTOR and len(X) > params["max_training_rows"]:
        # LOF keeps its training set and answers with k-NN queries against it:
        # a sample keeps both fitting and scoring time bounded.
        fit_rows = X[rng.choice(len(X), params["max_training_rows"], replace=False)]
    n_neighbors = params.get("n_neighbors")
    if n_neighbors is not None and n_neighbors >= len(fit_rows):
        params["n_neighbors"] = max(2, len(fit_rows) - 1)
    max_samples = params.get("max_samples")
    if isinstance(max_samples, int) and max_samples > len(fit_rows):
        # What scikit-learn would use, with a warning at every fit; recorded
        # as the version's parameter since it is what the trees were built on.
        params["max_samples"] = len(fit_rows)
    pipeline = build_pipeline(algorithm, params | {"n_jobs": 2})
    pipeline.fit(fit_rows)
    # n_jobs is a property of this machine, not of the model.
    pipeline.named_steps["detector"].set_params(n_jobs=1)

    sample = X if len(X) <= _THRESHOLD_SAMPLE else X[rng.choice(len(X), _THRESHOLD_SAMPLE)]
    probe = Detector(
        algorithm=algorithm,
        version_id=0,
        version=0,
        threshold=np.inf,
        features=MODEL_FEATURES,
        pipeline=pipeline,
        merchant_stats=data.merchant_stats,
    )
    scores = probe.score(sample)
    threshold = float(np.quantile(scores, 1.0 - params["contamination"]))
    anomaly_rate = float((scores >= threshold).mean())
    histogram_counts, histogram_edges = np.histogram(scores, bins=30)

    version = _next_version(algorithm)
    saved = artifact_save(
        payload={"pipeline": pipeline, "merchant_stats": data.merchant_stats},
        algorithm=algorithm,
        version=version,
    )
    seconds = time.perf_counter() - started
    with transaction.atomic():
        model_version = ModelVersion.objects.create(
            algorithm=algorithm,
            version=version,
            params=params,
            features=list(MODEL_FEATURES),
            threshold=threshold,
            metrics={
                "training_anomaly_rate": anomaly_rate,
                "training_seconds": round(seconds, 3),
                "score_quantiles": {
                    str(q): float(np.quantile(scores, q)) for q in (0.5, 0.9, 0.95, 0.99)
                },
                "score_histogram": {
                    "counts": histogram_counts.tolist(),
                    "edges": histogram_edges.tolist(),
                },
            },
            training_rows=len(X),
            training_since=data.since,
            training_until=data.until,
            artifact_path=saved.path,
            sha256=saved.sha256,
            format_version=FORMAT_VERSION,
            sklearn_version=sklearn_version(),
        )
    metrics.record_training(algorithm, seconds)
    log.info(
        "model.trained",
        algorithm=algorithm,
        version=version,
        rows=len(X),
        seconds=round(seconds, 3),
        threshold=threshold,
    )
    if activate:
        model_version_activate(model_version=model_version)
    return TrainingResult(model_version, len(X), seconds, threshold, anomaly_rate)


def models_train(
    *,
    algorithms: Sequence[str] | None = None,
    contamination: float | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    activate: bool = True,
) -> list[TrainingResult]:
    """Train the requested detectors (both by default) on one shared feature pass."""
    data = training_data(since=since, until=until)
    return [
        model_train(algorithm=algorithm, data=data, contamination=contamination, activate=activate)
        for algorithm in (algorithms or Algorithm.values)
    ]
