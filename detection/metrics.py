"""The product's Prometheus metrics (interface only; the observability work
fills in the collectors)."""

from __future__ import annotations


def record_predictions(model: str, anomalies: int, normals: int, seconds: float) -> None:
    pass


def record_batch(size: int, flagged: int) -> None:
    pass


def set_active_version(algorithm: str, version: int | None) -> None:
    pass


def record_artifact_failure(algorithm: str, reason: str) -> None:
    pass


def record_training(algorithm: str, seconds: float) -> None:
    pass


def record_review(status: str) -> None:
    pass


def record_import(stored: int, already_present: int, rejected: int) -> None:
    pass


def update_process_metrics() -> None:
    pass
