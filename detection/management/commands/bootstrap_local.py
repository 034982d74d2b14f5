from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from detection.bootstrap import local_admin_ensure
from detection.importer import import_transactions_csv
from detection.models import ModelVersion, Transaction
from detection.scoring import stored_transactions_score
from detection.training import models_train


class Command(BaseCommand):
    help = "Prepare a local instance: sample data, trained models, an admin user."

    def handle(self, *args: Any, **options: Any) -> None:
        if not Transaction.objects.exists():
            sample = settings.BASE_DIR / "fixtures" / "sample_transactions.csv"
            summary = import_transactions_csv(path=sample)
            self.stdout.write(f"loaded the sample: {summary.stored} transactions")
        if not ModelVersion.objects.filter(is_active=True).exists():
            for result in models_train():
                self.stdout.write(
                    f"trained {result.model_version}: {result.rows} rows, "
                    f"threshold {result.threshold:.4f}"
                )
            scored = stored_transactions_score()
            self.stdout.write(f"scored {scored.scored} transactions, {scored.flagged} flagged")
        admin = local_admin_ensure(credentials_file=settings.VAR_DIR / "local_admin.json")
        self.stdout.write(
            self.style.SUCCESS(
                f"local admin  username: {admin.username}  password: {admin.password}\n"
                f"API token    {admin.token}"
            )
        )
