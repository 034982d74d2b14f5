"""Logging configuration (placeholder until structlog ECS output lands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_logging_config(*, log_dir: Path, level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"console": {"class": "logging.StreamHandler"}},
        "root": {"handlers": ["console"], "level": level},
    }
