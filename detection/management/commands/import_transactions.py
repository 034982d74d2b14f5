from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from detection.importer import ImportFileError, import_transactions_csv


class Command(BaseCommand):
    help = "Import transactions from a CSV file in the original data set's format."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--chunk-size", type=int, default=20_000)

    def handle(self, *args: Any, path: Path, chunk_size: int, **options: Any) -> None:
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        show_progress = sys.stderr.isatty() and options["verbosity"] > 0
        with tqdm(unit=" rows", disable=not show_progress, file=sys.stderr) as bar:
            try:
                summary = import_transactions_csv(
                    path=path, chunk_size=chunk_size, progress=bar.update
                )
            except ImportFileError as exc:
                raise CommandError(str(exc)) from None
        for rejected in summary.rejected:
            self.stderr.write(str(rejected))
        self.stdout.write(
            f"read {summary.read}, stored {summary.stored}, "
            f"already present {summary.already_present}, rejected {summary.rejected_rows}"
        )
