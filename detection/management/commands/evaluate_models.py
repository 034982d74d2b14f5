from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection.dates import parse_when
from detection.evaluation import LabelsError, models_evaluate
from detection.registry import ArtifactError, NoActiveModel


class Command(BaseCommand):
    help = "Measure the active models against a labels file (transaction_id,is_fraud,scenario)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--labels", type=Path, required=True)
        parser.add_argument("--split-date", help="evaluate transactions from this date (UTC)")
        parser.add_argument("--json", type=Path, help="also write the report as JSON here")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            split = parse_when(options["split_date"]) if options["split_date"] else None
            report = models_evaluate(labels_path=options["labels"], split_date=split)
        except (ValueError, LabelsError, NoActiveModel, ArtifactError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{report.rows} labelled transactions, {report.frauds} fraud")
        for algorithm, quality in report.models.items():
            self.stdout.write(
                f"{algorithm} v{quality.model_version}: ROC-AUC {quality.roc_auc:.3f}, "
                f"PR-AUC {quality.pr_auc:.3f}"
            )
        for rule, verdict in report.rules.items():
            scenarios = ", ".join(f"{s} {r:.0%}" for s, r in verdict.recall_by_scenario.items())
            self.stdout.write(
                f"flagged ({rule}): precision {verdict.precision:.3f}, "
                f"recall {verdict.recall:.3f}, "
                f"false-positive rate {verdict.false_positive_rate:.4f} | {scenarios}"
            )
        if options["json"]:
            options["json"].write_text(json.dumps(report.as_dict(), indent=2, sort_keys=True))
