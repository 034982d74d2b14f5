"""Detection engine speed on a large stored data set.

Generates N rows (default 1,000,000), imports them into a temp SQLite
database, then measures: training both models, peak memory while training,
batch scoring of every stored transaction, and features + both models for a
single transaction in-process, with the 90-day history serving reads and
with the account's whole history.

    uv run python -m bench.bench_detection [--rows 1000000]

Targets (issue 3): training ≤ 60 s with peak memory ≤ 2.5 GB; scoring
1,000,000 stored transactions ≤ 60 s; a single transaction ≤ 1 ms.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import threading
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING

import psutil
from threadpoolctl import threadpool_limits

from bench.setup import django_with_temp_database

if TYPE_CHECKING:
    from detection.detectors import Detector
    from detection.features import Columns


class PeakMemory:
    """Samples this process's resident memory every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def max_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = django_with_temp_database("detection")

    from detection.features import columns_length
    from detection.history import account_history, frame_from_items, frame_from_queryset
    from detection.importer import import_transactions_csv
    from detection.models import Transaction
    from detection.registry import active_detectors
    from detection.scoring import lookback_seconds, stored_transactions_score
    from detection.synthetic import ROWS_PER_ACCOUNT_MONTH, generate
    from detection.training import models_train

    accounts = max(10, round(args.rows / (12 * ROWS_PER_ACCOUNT_MONTH)))
    out, labels = folder / "tx.csv", folder / "labels.csv"
    started = time.perf_counter()
    summary = generate(
        out=out,
        labels=labels,
        accounts=accounts,
        months=12,
        seed=11,
        fraud_rate=0.01,
        start=date(2024, 1, 1),
    )
    print(f"generated {summary.rows:,} rows in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    imported = import_transactions_csv(path=out)
    print(f"imported {imported.stored:,} rows in {time.perf_counter() - started:.1f} s")

    rss_before = psutil.Process().memory_info().rss
    with PeakMemory() as memory:
        started = time.perf_counter()
        results = models_train()
        train_seconds = time.perf_counter() - started
    print(
        f"trained both models on {results[0].rows:,} rows in {train_seconds:.1f} s "
        f"(IF {results[0].seconds:.1f} s, LOF {results[1].seconds:.1f} s); peak RSS "
        f"{memory.peak / 2**30:.2f} GiB (before training {rss_before / 2**30:.2f} GiB); "
        f"max RSS of the process {max_rss_gib():.2f} GiB"
    )

    started = time.perf_counter()
    scored = stored_transactions_score(rescore=True)
    print(
        f"scored {scored.scored:,} stored transactions in {time.perf_counter() - started:.1f} s "
        f"({scored.flagged:,} flagged)"
    )

    detectors = active_detectors()
    last = Transaction.objects.order_by("-timestamp").first()
    from detection.schema import validate_transaction

    target = frame_from_items(
        [
            validate_transaction(
                {
                    "transaction_id": "BENCH1",
                    "account_id": last.account_id,
                    "amount": "950.00",
                    "timestamp": last.timestamp.isoformat(),
                    "transaction_type": "Debit",
                    "location": last.location,
                    "device_id": "D000000",
                    "ip_address": "203.0.113.1",
                    "merchant_id": last.merchant_id,
                    "channel": "Online",
                    "customer_age": 40,
                    "customer_occupation": "Other",
                    "duration_seconds": 30,
                    "login_attempts": 3,
                    "account_balance": "100.00",
                }
            )
        ]
    )
    histories = {
        # What serving reads: the account's transactions in the lookback window.
        "the 90-day history serving reads": account_history(
            account_ids=[last.account_id],
            since=last.timestamp - timedelta(seconds=lookback_seconds()),
            before=last.timestamp + timedelta(seconds=1),
            exclude_transaction_ids=[last.transaction_id],
        ),
        # Older rows too (features ignore them): a longer frame to work through.
        "the whole 12-month history": frame_from_queryset(
            Transaction.objects.filter(account_id=last.account_id).exclude(pk=last.pk)
        ),
    }
    for label, history in histories.items():
        median, p99 = single_timings(detectors, history, target)
        print(
            f"single transaction, features + both models in-process, {label} "
            f"({columns_length(history)} rows): median {median:.3f} ms, p99 {p99:.3f} ms"
        )


def single_timings(
    detectors: dict[str, Detector], history: Columns, target: Columns
) -> tuple[float, float]:
    """Median and p99 in ms of features + both models for one transaction."""
    from detection.features import columns_concat, columns_length
    from detection.scoring import detector_features, score_rows

    def single() -> None:
        frame = columns_concat([history, target])
        features = detector_features(detectors, frame, rows=slice(columns_length(history), None))
        score_rows(detectors, features, record=False)

    # As a gunicorn worker serves it: one OpenMP / BLAS thread (the workers run
    # with OMP_NUM_THREADS=1), else BLAS spins up threads for a one-row product.
    timings = []
    with threadpool_limits(limits=1):
        for _ in range(50):
            single()
        for _ in range(1000):
            started = time.perf_counter()
            single()
            timings.append(time.perf_counter() - started)
    timings.sort()
    return statistics.median(timings) * 1000, timings[989] * 1000


if __name__ == "__main__":
    main()
