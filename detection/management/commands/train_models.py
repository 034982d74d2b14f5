from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from detection.dates import parse_when
from detection.models import Algorithm
from detection.registry import ArtifactError
from detection.scoring import stored_transactions_score
from detection.training import NotEnoughData, models_train


class Command(BaseCommand):
    help = "Train Isolation Forest and LOF on the stored transactions, activate and score."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--algorithm", choices=Algorithm.values)
        parser.add_argument("--contamination", type=float)
        parser.add_argument("--since", help="train on transactions from this date (UTC)")
        parser.add_argument("--until", help="train on transactions before this date (UTC)")
        parser.add_argument("--no-activate", action="store_true")
        parser.add_argument(
            "--no-score", action="store_true", help="do not score stored transactions afterwards"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        contamination = options["contamination"]
        if contamination is not None and not 0 < contamination <= 0.5:
            raise CommandError("--contamination must be in (0, 0.5]")
        try:
            since = parse_when(options["since"]) if options["since"] else None
            until = parse_when(options["until"]) if options["until"] else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if since and until and since >= until:
            raise CommandError("--since must be before --until")
        algorithms = (options["algorithm"],) if options["algorithm"] else None
        try:
            results = models_train(
                algorithms=algorithms,
                contamination=contamination,
                since=since,
                until=until,
                activate=not options["no_activate"],
            )
        except (NotEnoughData, ArtifactError) as exc:
            raise CommandError(str(exc)) from None
        for result in results:
            mv = result.model_version
            self.stdout.write(
                f"{mv.algorithm} v{mv.version}{' (active)' if mv.is_active else ''}: "
                f"{result.rows} rows in {result.seconds:.1f} s, threshold {result.threshold:.4f}, "
                f"training anomaly rate {result.anomaly_rate:.2%}"
            )
        if options["no_activate"] or options["no_score"]:
            return
        show = sys.stderr.isatty() and options["verbosity"] > 0
        with tqdm(unit=" tx", disable=not show, file=sys.stderr) as bar:
            summary = stored_transactions_score(rescore=False, progress=bar.update)
        self.stdout.write(
            f"scored {summary.scored} stored transactions in {summary.seconds:.1f} s, "
            f"{summary.flagged} flagged"
        )
