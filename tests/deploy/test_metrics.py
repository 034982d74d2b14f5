"""The product metrics: helpers, start-up values, and how workers' values add up
in prometheus_client's multiprocess mode (what gunicorn runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from unittest.mock import Mock

import pytest
from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from detection import metrics


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_it_counts_predictions_per_model_and_verdict():
    before_anomaly = _value("anomaly_predictions_total", model="x_model", verdict="anomaly")
    before_count = _value("anomaly_scoring_seconds_count", model="x_model")

    metrics.record_predictions("x_model", anomalies=2, normals=8, seconds=0.003)

    assert _value("anomaly_predictions_total", model="x_model", verdict="anomaly") == (
        before_anomaly + 2
    )
    assert _value("anomaly_predictions_total", model="x_model", verdict="normal") == 8
    assert _value("anomaly_scoring_seconds_count", model="x_model") == before_count + 1
    # 3 ms falls in the 5 ms bucket and not in the 2 ms one.
    assert _value("anomaly_scoring_seconds_bucket", model="x_model", le="0.002") == 0
    assert _value("anomaly_scoring_seconds_bucket", model="x_model", le="0.005") == 1


def test_it_counts_scored_and_flagged_transactions_for_the_flagged_ratio():
    scored = _value("anomaly_transactions_scored_total")
    flagged = _value("anomaly_transactions_flagged_total")
    batches = _value("anomaly_batch_size_count")

    metrics.record_batch(size=100, flagged=3)

    assert _value("anomaly_transactions_scored_total") == scored + 100
    assert _value("anomaly_transactions_flagged_total") == flagged + 3
    assert _value("anomaly_batch_size_count") == batches + 1


def test_it_reports_no_active_model_as_zero():
    metrics.set_active_version("x_algorithm", 7)
    assert _value("anomaly_active_model_version", algorithm="x_algorithm") == 7

    metrics.set_active_version("x_algorithm", None)
    assert (
        REGISTRY.get_sample_value("anomaly_active_model_version", {"algorithm": "x_algorithm"}) == 0
    )


def test_it_counts_training_reviews_imports_and_artifact_failures():
    runs = _value("anomaly_training_runs_total", algorithm="x_train")
    metrics.record_training("x_train", seconds=12.5)
    metrics.record_review("x_status")
    metrics.record_import(stored=5, already_present=2, rejected=1)
    metrics.record_artifact_failure("x_train", "tampered")

    assert _value("anomaly_training_runs_total", algorithm="x_train") == runs + 1
    assert _value("anomaly_training_duration_seconds_sum", algorithm="x_train") >= 12.5
    assert _value("anomaly_reviews_total", status="x_status") == 1
    assert _value("anomaly_imported_rows_total", outcome="stored") >= 5
    assert _value("anomaly_imported_rows_total", outcome="already_present") >= 2
    assert _value("anomaly_imported_rows_total", outcome="rejected") >= 1
    assert (
        _value(
            "anomaly_artifact_verification_failures_total", algorithm="x_train", reason="tampered"
        )
        == 1
    )


def test_it_samples_this_process_memory_and_cpu():
    metrics.update_process_metrics()

    assert _value("anomaly_process_resident_memory_bytes") > 10 * 1024 * 1024
    assert _value("anomaly_process_cpu_seconds_total") > 0


def test_it_starts_known_series_at_zero_but_not_the_active_version(monkeypatch):
    active_version = Mock()
    monkeypatch.setattr(metrics, "ACTIVE_MODEL_VERSION", active_version)

    metrics.initialize_metrics()

    for model in metrics.ALGORITHMS:
        for verdict in metrics.VERDICTS:
            assert (
                REGISTRY.get_sample_value(
                    "anomaly_predictions_total", {"model": model, "verdict": verdict}
                )
                is not None
            )
    for status in ("confirmed_fraud", "false_positive", "pending"):
        assert REGISTRY.get_sample_value("anomaly_reviews_total", {"status": status}) is not None
    # A zero written by a starting worker would read as "no active model".
    assert active_version.mock_calls == []


def test_it_knows_the_models_algorithms_and_review_statuses():
    # The zero-initialised label values must be the ones the domain uses.
    from detection.models import Algorithm, ReviewStatus

    assert set(metrics.ALGORITHMS) == set(Algorithm.values)
    assert set(metrics.REVIEW_STATUSES) == set(ReviewStatus.values)


_WORKER = """
import json, os, sys
from detection import metrics
metrics.record_predictions("isolation_forest", 3, 7, 0.004)
metrics.record_batch(10, 2)
metrics.set_active_version("isolation_forest", int(sys.argv[1]))
metrics.update_process_metrics()
print(json.dumps({"pid": os.getpid(), "rss": metrics.RESIDENT_MEMORY._value.get()}))
"""


def _worker(multiproc_dir, version: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _WORKER, str(version)],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(settings.BASE_DIR),
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)


def _scrape(multiproc_dir) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(multiproc_dir))
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


@pytest.fixture
def two_workers(tmp_path):
    first = _worker(tmp_path, version=3)
    second = _worker(tmp_path, version=4)
    assert first["pid"] != second["pid"]
    return tmp_path, first, second


def test_it_adds_up_counters_of_all_workers(two_workers):
    multiproc_dir, _, _ = two_workers

    samples = _scrape(multiproc_dir)

    iforest = (("model", "isolation_forest"),)
    assert samples[("anomaly_predictions_total", (*iforest, ("verdict", "anomaly")))] == 6
    assert samples[("anomaly_predictions_total", (*iforest, ("verdict", "normal")))] == 14
    assert samples[("anomaly_transactions_scored_total", ())] == 20
    assert samples[("anomaly_transactions_flagged_total", ())] == 4
    assert samples[("anomaly_scoring_seconds_count", iforest)] == 2


def test_it_reports_the_version_most_recently_activated_by_any_worker(two_workers):
    multiproc_dir, first, second = two_workers
    mark_process_dead(first["pid"], path=str(multiproc_dir))
    mark_process_dead(second["pid"], path=str(multiproc_dir))

    samples = _scrape(multiproc_dir)

    assert samples[("anomaly_active_model_version", (("algorithm", "isolation_forest"),))] == 4


def test_it_sums_memory_of_live_workers_only(two_workers):
    multiproc_dir, first, second = two_workers
    both = _scrape(multiproc_dir)[("anomaly_process_resident_memory_bytes", ())]
    assert both == first["rss"] + second["rss"]

    mark_process_dead(first["pid"], path=str(multiproc_dir))

    after = _scrape(multiproc_dir)[("anomaly_process_resident_memory_bytes", ())]
    assert after == second["rss"]


def test_it_keeps_cpu_time_of_exited_workers_so_the_total_never_drops(two_workers):
    multiproc_dir, first, _ = two_workers
    before = _scrape(multiproc_dir)[("anomaly_process_cpu_seconds_total", ())]
    assert before > 0

    mark_process_dead(first["pid"], path=str(multiproc_dir))

    assert _scrape(multiproc_dir)[("anomaly_process_cpu_seconds_total", ())] == before
