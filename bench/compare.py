"""Compare the scoring path of this checkout with another commit's, in pairs.

    uv run python -m bench.compare 6006df2              # batches of 1,000
    uv run python -m bench.compare 6006df2 --size 1 --pairs 300

A shared 2-core machine's speed moves by two or three times within minutes,
far more than most changes do, so whole benchmark runs one after the other
cannot tell two versions apart. Here two processes, one on this checkout
and one on a git worktree of the other commit, each prepare the same
generated history and models, then score the benchmark's kind of traffic
in-process (``transactions_score``, stored, both models) by turns, batch by
batch: both meet the same minute of the machine, and the pairs' differences
say which is faster. HTTP and validation are left out; the history grows
with every batch, as in ``bench.bench_api``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
CHECKOUT = HERE.parent.parent
# Each side's prepared database is generated alike: same accounts, months and
# seed, the same stored transactions as templates.
ACCOUNTS, MONTHS, SEED = 400, 4, 11


def _worker(repo: Path, size: int) -> None:
    """One side: prepare a database with ``repo``'s code, then score a batch
    for every line read, printing its milliseconds."""
    # The requests are made by this checkout's benchmark code, alike on both
    # sides; everything after comes from ``repo``.
    sys.path.insert(0, str(CHECKOUT))
    from bench.bench_api import Payloads, request_template, stored_history

    sys.path.insert(0, str(repo))
    os.chdir(repo)
    folder = Path(tempfile.mkdtemp(prefix="anomaly-compare-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="anomaly.settings",
        DATABASE_URL=f"sqlite:///{folder / 'compare.sqlite3'}",
        ML_ARTIFACTS_DIR=str(folder / "artifacts"),
        LOG_LEVEL="WARNING",
    )
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from detection.models import Transaction
        from detection.schema import validate_batch
        from detection.scoring import transactions_score

        call_command("migrate", verbosity=0)
        start = stored_history(folder, accounts=ACCOUNTS, months=MONTHS, seed=SEED)
        # Every seventh of the first 5,000, the same on both sides.
        templates = [request_template(tx) for tx in Transaction.objects.order_by("id")[:5000:7]]
        payloads = Payloads(templates, start=start)

        def batch(prefix: str) -> list[Any]:
            return validate_batch(json.loads(payloads.body(prefix, size)), max_items=size)

        for _ in range(3):  # the first batches load and warm up the models
            transactions_score(items=batch("CW"))
        print("ready", flush=True)
        for _ in sys.stdin:
            items = batch("CK")
            # As the server's workers score a large request
            # (anomaly/collector.py): the collector off meanwhile, run after;
            # both sides alike, so a collection falls on neither's timing.
            gc.disable()
            began = time.perf_counter()
            transactions_score(items=items)
            elapsed = time.perf_counter() - began
            gc.enable()
            gc.collect()
            print(f"{elapsed * 1000:.3f}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _start(repo: Path, size: int) -> subprocess.Popen[str]:
    # One OpenMP thread unless told otherwise, as the server's workers have
    # (anomaly/gunicorn_conf.py): with two, LOF's neighbour search in the
    # helper thread took 18.6 instead of 13.7 ms for a batch of 1,000, beside
    # the scoring thread, and each side's figures were those of another setup.
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.Popen(
        [sys.executable, str(HERE), "--worker", str(repo), "--size", str(size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def compare(rev: str, *, size: int, pairs: int) -> dict[str, list[float]]:
    """Milliseconds per batch of each side, pair by pair."""
    worktree = Path(tempfile.mkdtemp(prefix="anomaly-compare-rev-"))
    subprocess.run(
        ["git", "-C", str(CHECKOUT), "worktree", "add", "--detach", "-f", str(worktree), rev],
        check=True,
        capture_output=True,
    )
    sides = {"this checkout": CHECKOUT, rev: worktree}
    workers = {}
    try:
        workers = {name: _start(repo, size) for name, repo in sides.items()}
        for name, worker in workers.items():
            if worker.stdout is None or worker.stdout.readline().strip() != "ready":
                raise SystemExit(f"{name}: the worker did not start")
        timings: dict[str, list[float]] = {name: [] for name in sides}
        for turn in range(pairs):
            # Each goes first in every other pair.
            for name in list(sides)[:: 1 if turn % 2 else -1]:
                worker = workers[name]
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write("next\n")
                worker.stdin.flush()
                timings[name].append(float(worker.stdout.readline()))
        return timings
    finally:
        for worker in workers.values():
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait()
        subprocess.run(
            ["git", "-C", str(CHECKOUT), "worktree", "remove", "--force", str(worktree)],
            capture_output=True,
        )


def report(timings: dict[str, list[float]]) -> list[str]:
    (this, here), (rev, there) = timings.items()
    lines = [
        f"{name:>16}: median {statistics.median(values):.2f} ms, "
        f"min {min(values):.2f}, max {max(values):.2f}"
        for name, values in timings.items()
    ]
    gains = [b - a for a, b in zip(here, there, strict=True)]
    faster = sum(gain > 0 for gain in gains)
    lines.append(
        f"{this} faster in {faster} of {len(gains)} pairs; median of the pairs' "
        f"differences ({rev} minus {this}) {statistics.median(gains):+.2f} ms"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", nargs="?", help="the commit to compare with")
    parser.add_argument("--size", type=int, default=1000, help="transactions per batch")
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        _worker(args.worker, args.size)
        return
    if args.rev is None:
        parser.error("name the commit to compare with")
    print(
        f"scoring batches of {args.size:,}, stored, in-process; {args.pairs} pairs, "
        f"this checkout and {args.rev} by turns",
        flush=True,
    )
    for line in report(compare(args.rev, size=args.size, pairs=args.pairs)):
        print(line)


if __name__ == "__main__":
    main()
