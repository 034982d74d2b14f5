from __future__ import annotations

import math
import sys
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from detection.synthetic import (
    FRAUD_RATE_MAX,
    GenerationError,
    default_labels_path,
    estimate_rows,
    generate,
)

# Below this a run takes well under a second and a bar would only flicker.
_PROGRESS_MIN_ROWS = 200_000


class Command(BaseCommand):
    help = (
        "Generate synthetic transactions in the public data set's CSV format, with a labels "
        "file naming the injected fraud. Same options, same seed: byte-identical files."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, required=True, help="transactions CSV to write")
        parser.add_argument(
            "--labels", type=Path, help="labels CSV to write (default: <out stem>_labels.csv)"
        )
        parser.add_argument("--accounts", type=int, default=1000)
        parser.add_argument("--months", type=int, default=6)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--fraud-rate",
            type=float,
            default=0.01,
            help=f"fraction of transactions that are fraud, 0 to {FRAUD_RATE_MAX}",
        )
        parser.add_argument("--start", default="2024-01-01", help="first day, YYYY-MM-DD (UTC)")

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"]
        labels: Path = options["labels"] or default_labels_path(out)
        accounts, months = options["accounts"], options["months"]
        fraud_rate = options["fraud_rate"]
        if accounts < 1:
            raise CommandError(f"--accounts must be at least 1, not {accounts}")
        if months < 1:
            raise CommandError(f"--months must be at least 1, not {months}")
        if not (math.isfinite(fraud_rate) and 0 <= fraud_rate <= FRAUD_RATE_MAX):
            raise CommandError(
                f"--fraud-rate must be between 0 and {FRAUD_RATE_MAX}, not {fraud_rate}"
            )
        if options["seed"] < 0:
            raise CommandError(f"--seed must be zero or positive, not {options['seed']}")
        try:
            start = date.fromisoformat(options["start"])
        except ValueError:
            raise CommandError(
                f"--start must be a date as YYYY-MM-DD, not {options['start']!r}"
            ) from None

        show_progress = (
            sys.stderr.isatty()
            and options["verbosity"] > 0
            and estimate_rows(accounts, months) >= _PROGRESS_MIN_ROWS
        )
        with tqdm(unit=" rows", disable=not show_progress, file=sys.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                summary = generate(
                    out=out,
                    labels=labels,
                    accounts=accounts,
                    months=months,
                    seed=options["seed"],
                    fraud_rate=fraud_rate,
                    start=start,
                    progress=progress,
                )
            except GenerationError as exc:
                raise CommandError(str(exc)) from None

        per_scenario = ", ".join(f"{name} {count}" for name, count in summary.fraud_rows.items())
        self.stdout.write(
            f"wrote {summary.rows} transactions of {summary.accounts} accounts "
            f"from {summary.start} to {summary.end} to {summary.out}\n"
            f"wrote labels to {summary.labels}: {summary.fraud_total} fraud ({per_scenario})"
        )
