"""Throughput of the synthetic generator: 1,000,000 rows to a temp folder.

    uv run python -m bench.bench_generate [--rows 1000000] [--seed 1]

Prints rows written, seconds, rows/s (wall clock and per CPU-second, which
stays meaningful when other work shares the machine) and the peak resident
memory, so a regression in speed or in streaming shows up.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psutil

from detection.synthetic import ROWS_PER_ACCOUNT_MONTH, generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    accounts = max(1, round(args.rows / (args.months * ROWS_PER_ACCOUNT_MONTH)))
    process = psutil.Process()
    peak = process.memory_info().rss

    def sample(_done: int, _total: int) -> None:
        nonlocal peak
        peak = max(peak, process.memory_info().rss)

    with tempfile.TemporaryDirectory(prefix="anomaly-bench-generate-") as folder:
        out = Path(folder) / "transactions.csv"
        began, began_cpu = time.perf_counter(), time.process_time()
        summary = generate(
            out=out,
            labels=Path(folder) / "labels.csv",
            accounts=accounts,
            months=args.months,
            seed=args.seed,
            fraud_rate=0.01,
            progress=sample,
        )
        seconds = time.perf_counter() - began
        cpu = time.process_time() - began_cpu
        size = out.stat().st_size
    print(
        f"accounts {accounts}, months {args.months}: {summary.rows:,} rows "
        f"({summary.fraud_total:,} fraud) in {seconds:.2f} s "
        f"= {summary.rows / seconds:,.0f} rows/s "
        f"({summary.rows / cpu:,.0f} per CPU-second: the figure when the machine is busy); "
        f"{size / 1e6:.0f} MB written; peak RSS {peak / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
