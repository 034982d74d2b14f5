from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection.models import ModelVersion
from detection.registry import ArtifactError, model_version_activate


class Command(BaseCommand):
    help = "Make a model version the active one of its algorithm (also how to roll back)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", type=int, help="ModelVersion id (see /api/models/)")

    def handle(self, *args: Any, id: int, **options: Any) -> None:
        model_version = ModelVersion.objects.filter(pk=id).first()
        if model_version is None:
            raise CommandError(f"no model version with id {id}")
        try:
            model_version_activate(model_version=model_version)
        except ArtifactError as exc:
            raise CommandError(f"not activated: {exc}") from None
        self.stdout.write(f"{model_version} is now active")
