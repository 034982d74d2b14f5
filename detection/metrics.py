"""The product's own Prometheus metrics and the helpers domain code calls.

django-prometheus already counts HTTP traffic and database/cache calls; these
are what only the detection code knows. Names are a contract: the rules in
deploy/prometheus/rules/ and the dashboards in deploy/grafana/dashboards/ use
them, and tests/deploy/test_dashboards.py checks that they are exported.

Under gunicorn, prometheus_client runs in multiprocess mode (the environment
variable PROMETHEUS_MULTIPROC_DIR is set by anomaly/gunicorn_conf.py before
any worker imports this module): every worker writes its values to files in
that directory and a scrape adds them up. Counters and histograms add up by
themselves; each gauge states how its per-worker values combine. Without the
variable (tests, manage.py commands) the ordinary in-process registry is used
and everything behaves the same.
"""

from __future__ import annotations

import os

import psutil
from prometheus_client import Counter, Gauge, Histogram

ALGORITHMS = ("isolation_forest", "local_outlier_factor")
VERDICTS = ("anomaly", "normal")
REVIEW_STATUSES = ("confirmed_fraud", "false_positive", "pending")
IMPORT_OUTCOMES = ("stored", "already_present", "rejected")
HISTORY_SOURCES = ("database", "copy")

PREDICTIONS = Counter(
    "anomaly_predictions",
    "Transactions scored, by model and by that model's verdict.",
    ["model", "verdict"],
)
SCORING_SECONDS = Histogram(
    "anomaly_scoring_seconds",
    "Time one model took to score one batch.",
    ["model"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
)
BATCH_SIZE = Histogram(
    "anomaly_batch_size",
    "Transactions per scoring batch (API request, form or batch command chunk).",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10_000, 100_000, 1_000_000),
)
TRANSACTIONS_SCORED = Counter(
    "anomaly_transactions_scored", "Transactions given a flagged/not flagged verdict."
)
TRANSACTIONS_FLAGGED = Counter(
    "anomaly_transactions_flagged", "Transactions flagged by the configured rule."
)
ACTIVE_MODEL_VERSION = Gauge(
    "anomaly_active_model_version",
    "Version number of the active model per algorithm; 0 when there is none.",
    ["algorithm"],
    # The value most recently set by any worker, dead or alive: a worker that
    # activates a version updates it for the whole instance, and the value
    # survives the restart of the worker that set it.
    multiprocess_mode="mostrecent",
)
ARTIFACT_FAILURES = Counter(
    "anomaly_artifact_verification_failures",
    "Model artifacts refused at load time (missing, checksum mismatch, wrong version...).",
    ["algorithm", "reason"],
)
TRAINING_RUNS = Counter("anomaly_training_runs", "Completed training runs.", ["algorithm"])
TRAINING_SECONDS = Histogram(
    "anomaly_training_duration_seconds",
    "Wall time of one training run of one algorithm.",
    ["algorithm"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
REVIEWS = Counter("anomaly_reviews", "Analyst reviews recorded, by new status.", ["status"])
IMPORTED_ROWS = Counter(
    "anomaly_imported_rows", "CSV rows processed by the importer, by outcome.", ["outcome"]
)
HISTORY_ROWS = Counter(
    "anomaly_history_rows",
    "Rows of account history online scoring used, by source: read from the "
    "database for the request, or held from earlier requests in the worker's copy.",
    ["source"],
)
HISTORY_COPY_ROWS = Gauge(
    "anomaly_history_copy_rows",
    "Rows of account history the workers hold (detection/history_cache.py).",
    multiprocess_mode="livesum",
)
RESIDENT_MEMORY = Gauge(
    "anomaly_process_resident_memory_bytes",
    "Resident memory of the application processes, summed over live workers.",
    multiprocess_mode="livesum",
)
CPU_SECONDS = Gauge(
    "anomaly_process_cpu_seconds_total",
    "User + system CPU time of the application processes, summed over workers.",
    # "sum" keeps the last value of workers that have exited, so the total
    # never drops when gunicorn replaces a worker and rate() does not read the
    # drop as a counter reset. It restarts from zero with the gunicorn master,
    # which wipes the multiprocess directory.
    multiprocess_mode="sum",
)


def record_predictions(model: str, anomalies: int, normals: int, seconds: float) -> None:
    """One model scored one batch: ``anomalies + normals`` transactions."""
    PREDICTIONS.labels(model=model, verdict="anomaly").inc(anomalies)
    PREDICTIONS.labels(model=model, verdict="normal").inc(normals)
    SCORING_SECONDS.labels(model=model).observe(seconds)


def record_batch(size: int, flagged: int) -> None:
    """A batch got its final verdicts; ``flagged`` of ``size`` were flagged."""
    BATCH_SIZE.observe(size)
    TRANSACTIONS_SCORED.inc(size)
    TRANSACTIONS_FLAGGED.inc(flagged)


def record_history(*, read: int, held: int, copy_rows: int | None = None) -> None:
    """A request's history: ``read`` rows from the database, ``held`` from
    the worker's copy, which now holds ``copy_rows`` (None: not used)."""
    HISTORY_ROWS.labels(source="database").inc(read)
    HISTORY_ROWS.labels(source="copy").inc(held)
    if copy_rows is not None:
        HISTORY_COPY_ROWS.set(copy_rows)


def set_active_version(algorithm: str, version: int | None) -> None:
    ACTIVE_MODEL_VERSION.labels(algorithm=algorithm).set(0 if version is None else version)


def record_artifact_failure(algorithm: str, reason: str) -> None:
    ARTIFACT_FAILURES.labels(algorithm=algorithm, reason=reason).inc()


def record_training(algorithm: str, seconds: float) -> None:
    TRAINING_RUNS.labels(algorithm=algorithm).inc()
    TRAINING_SECONDS.labels(algorithm=algorithm).observe(seconds)


def record_review(status: str) -> None:
    REVIEWS.labels(status=status).inc()


def record_import(stored: int, already_present: int, rejected: int) -> None:
    IMPORTED_ROWS.labels(outcome="stored").inc(stored)
    IMPORTED_ROWS.labels(outcome="already_present").inc(already_present)
    IMPORTED_ROWS.labels(outcome="rejected").inc(rejected)


_process: psutil.Process | None = None


def update_process_metrics() -> None:
    """Sample this process's memory and CPU time (a few microseconds)."""
    global _process
    # A forked worker must not report its parent's numbers.
    if _process is None or _process.pid != os.getpid():
        _process = psutil.Process()
    with _process.oneshot():
        rss = _process.memory_info().rss
        cpu = _process.cpu_times()
    RESIDENT_MEMORY.set(rss)
    CPU_SECONDS.set(cpu.user + cpu.system)


def initialize_metrics() -> None:
    """Create the known label combinations at zero.

    A series that first appears with value 1 loses that first increment in
    rate() and increase(), and dashboards show "no data" instead of 0. Called
    once per process at start-up (by anomaly.middleware), never at import.
    The active-version gauge is left alone on purpose: a zero written by a
    new worker would read as "no active model" for the whole instance.
    """
    for algorithm in ALGORITHMS:
        for verdict in VERDICTS:
            PREDICTIONS.labels(model=algorithm, verdict=verdict)
        SCORING_SECONDS.labels(model=algorithm)
        TRAINING_RUNS.labels(algorithm=algorithm)
        TRAINING_SECONDS.labels(algorithm=algorithm)
    for status in REVIEW_STATUSES:
        REVIEWS.labels(status=status)
    for outcome in IMPORT_OUTCOMES:
        IMPORTED_ROWS.labels(outcome=outcome)
    for source in HISTORY_SOURCES:
        HISTORY_ROWS.labels(source=source)
    update_process_metrics()
