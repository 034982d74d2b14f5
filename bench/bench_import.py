"""CSV import throughput: N rows into a fresh SQLite database.

    uv run python -m bench.bench_import [--rows 1000000] [--chunk-size 20000] [--workers N]

Builds the CSV in a temp folder by repeating the public data set (or the
shipped sample when the public file is absent) with fresh transaction ids,
then imports it with ``import_transactions_csv`` into a throw-away database
and prints rows/s and the wall, user and system time of the import alone.
Target (issue 2): 1,000,000 rows in at most 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import time
from pathlib import Path

from bench.setup import django_with_temp_database

BASE_DIR = Path(__file__).resolve().parent.parent
SOURCES = (
    BASE_DIR.parent / "shared" / "data" / "bank_transactions_data.csv",
    BASE_DIR / "fixtures" / "sample_transactions.csv",
)


def build_csv(out: Path, rows: int) -> int:
    """Write ``rows`` rows: the source rows over and over, each with a new id."""
    source = next((path for path in SOURCES if path.exists()), None)
    if source is None:
        raise SystemExit("no source data: neither the public data set nor the sample exists")
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        template = list(reader)
    id_column = header.index("TransactionID")
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for n in range(rows):
            row = list(template[n % len(template)])
            row[id_column] = f"TX{n:09d}"
            writer.writerow(row)
    return out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument(
        "--workers", type=int, default=None, help="validating processes (default: the importer's)"
    )
    parser.add_argument("--profile", help="write a cProfile of the import here")
    args = parser.parse_args()

    folder = django_with_temp_database("import")
    try:
        from django.db import connection

        from detection.importer import import_transactions_csv
        from detection.models import Transaction

        path = folder / "transactions.csv"
        began = time.perf_counter()
        size = build_csv(path, args.rows)
        print(
            f"built {args.rows:,} rows ({size / 1e6:.0f} MB) in {time.perf_counter() - began:.1f} s"
        )
        connection.close()  # the import opens its own, as the command would

        options = {
            name: value
            for name, value in (("chunk_size", args.chunk_size), ("workers", args.workers))
            if value is not None
        }
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        if args.profile:
            import cProfile

            with cProfile.Profile() as profile:
                summary = import_transactions_csv(path=path, **options)
            profile.dump_stats(args.profile)
        else:
            summary = import_transactions_csv(path=path, **options)
        seconds = time.perf_counter() - began
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)

        assert summary.stored == args.rows, summary
        assert not summary.rejected, summary.rejected[:5]
        assert Transaction.objects.count() == args.rows
        user = usage.ru_utime - usage_before.ru_utime
        system = usage.ru_stime - usage_before.ru_stime
        user_children = children.ru_utime - children_before.ru_utime
        system_children = children.ru_stime - children_before.ru_stime
        print(
            f"imported {summary.stored:,} rows in {seconds:.1f} s: "
            f"{summary.stored / seconds:,.0f} rows/s "
            f"(main process user {user:.1f} s, sys {system:.1f} s; "
            f"workers user {user_children:.1f} s, sys {system_children:.1f} s; "
            f"{os.cpu_count()} CPUs)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
