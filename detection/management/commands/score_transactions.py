from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from detection.dates import parse_when
from detection.registry import ArtifactError, NoActiveModel
from detection.scoring import stored_transactions_score


class Command(BaseCommand):
    help = "Score stored transactions with the active model versions (resumable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="only transactions from this date (UTC)")
        parser.add_argument(
            "--rescore", action="store_true", help="score again those already scored"
        )
        parser.add_argument("--chunk-size", type=int, default=20_000)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1")
        try:
            since = parse_when(options["since"]) if options["since"] else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        show = sys.stderr.isatty() and options["verbosity"] > 0
        with tqdm(unit=" tx", disable=not show, file=sys.stderr) as bar:
            try:
                summary = stored_transactions_score(
                    since=since,
                    rescore=options["rescore"],
                    chunk_size=options["chunk_size"],
                    progress=bar.update,
                )
            except (NoActiveModel, ArtifactError) as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(
            f"scored {summary.scored}, skipped {summary.skipped} already scored, "
            f"flagged {summary.flagged} in {summary.seconds:.1f} s"
        )
