"""Model artifacts: written atomically, verified before unpickling, cached per
process, and swapped when another version becomes active.

File layout: a magic line, a JSON header line (format version, scikit-learn
version, payload length), then the joblib payload. The SHA-256 of the whole
file is stored in ``ModelVersion``; the file is hashed and its header checked
*before* joblib sees a byte, so a tampered or foreign file is never unpickled.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import structlog
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from detection import metrics, sql
from detection.detectors import Detector
from detection.models import Algorithm, ModelVersion

# 2: merchant profiles carry price offsets, and features depend on them.
FORMAT_VERSION = 2


@functools.cache
def sklearn_version() -> str:
    """The installed scikit-learn's version, read without importing it."""
    return importlib.metadata.version("scikit-learn")


MAGIC = b"ANOMALY-ARTIFACT\n"

log = structlog.get_logger("detection")


class ArtifactError(Exception):
    """An artifact cannot be used; ``reason`` is one of the subclasses' names."""

    reason = "invalid"

    def __init__(self, model_version: ModelVersion | None, detail: str) -> None:
        self.model_version = model_version
        self.detail = detail
        name = str(model_version) if model_version is not None else "artifact"
        super().__init__(f"{name}: {detail}")


class ArtifactMissing(ArtifactError):
    reason = "missing"


class ArtifactTampered(ArtifactError):
    reason = "tampered"


class ArtifactTruncated(ArtifactError):
    reason = "truncated"


class ArtifactIncompatible(ArtifactError):
    reason = "incompatible"


class NoActiveModel(Exception):
    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        super().__init__(f"{algorithm}: no active version")


@dataclass(frozen=True)
class SavedArtifact:
    path: str  # relative to ML_ARTIFACTS_DIR, so the folder can move
    sha256: str


def artifacts_dir() -> Path:
    return Path(settings.ML_ARTIFACTS_DIR)


def artifact_save(*, payload: dict[str, Any], algorithm: str, version: int) -> SavedArtifact:
    """Write the payload under ML_ARTIFACTS_DIR atomically: a temp file in the
    same folder, fsync, then rename, so readers see the old file or the new."""
    buffer = io.BytesIO()
    joblib.dump(payload, buffer, compress=3)
    body = buffer.getvalue()
    header = json.dumps(
        {
            "format_version": FORMAT_VERSION,
            "sklearn_version": sklearn_version(),
            "algorithm": algorithm,
            "version": version,
            "payload_bytes": len(body),
        },
        sort_keys=True,
    ).encode()
    content = MAGIC + header + b"\n" + body
    folder = artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{algorithm}-v{version}.joblib"
    fd, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, folder / name)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return SavedArtifact(path=name, sha256=hashlib.sha256(content).hexdigest())


def _verified_payload(model_version: ModelVersion) -> dict[str, Any]:
    path = artifacts_dir() / model_version.artifact_path
    if (
        model_version.format_version != FORMAT_VERSION
        or model_version.sklearn_version != sklearn_version()
    ):
        raise ArtifactIncompatible(
            model_version,
            f"made with format {model_version.format_version} and scikit-learn "
            f"{model_version.sklearn_version}; this build reads format {FORMAT_VERSION} "
            f"with scikit-learn {sklearn_version()}",
        )
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactMissing(model_version, f"artifact file {path.name} is missing") from None
    except OSError as exc:
        raise ArtifactMissing(model_version, f"artifact file unreadable: {exc}") from None
    header = _header(model_version, content)
    body_start = len(MAGIC) + content[len(MAGIC) :].index(b"\n") + 1
    body_bytes = len(content) - body_start
    if body_bytes < header["payload_bytes"]:
        raise ArtifactTruncated(
            model_version,
            f"artifact is truncated ({body_bytes} of {header['payload_bytes']} payload bytes)",
        )
    if hashlib.sha256(content).hexdigest() != model_version.sha256:
        raise ArtifactTampered(model_version, "artifact checksum does not match the database")
    if header["format_version"] != FORMAT_VERSION:
        raise ArtifactIncompatible(model_version, "artifact format version differs")
    return joblib.load(io.BytesIO(content[body_start:]))


def _header(model_version: ModelVersion, content: bytes) -> dict[str, Any]:
    if not content.startswith(MAGIC):
        if len(content) < len(MAGIC) and MAGIC.startswith(content):
            raise ArtifactTruncated(model_version, "artifact is truncated (no header)")
        raise ArtifactTampered(model_version, "not an artifact of this product (bad magic)")
    end = content.find(b"\n", len(MAGIC))
    if end == -1:
        raise ArtifactTruncated(model_version, "artifact is truncated (header cut off)")
    try:
        header = json.loads(content[len(MAGIC) : end])
        int(header["payload_bytes"])
    except (ValueError, KeyError, TypeError):
        raise ArtifactTampered(model_version, "artifact header is unreadable") from None
    return header


def load_detector(model_version: ModelVersion) -> Detector:
    """The one way to get a usable detector from a model version (cached)."""
    key = (model_version.pk, model_version.sha256)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        payload = _verified_payload(model_version)
    except ArtifactError as exc:
        metrics.record_artifact_failure(model_version.algorithm, exc.reason)
        log.error(
            "artifact.verification_failed",
            algorithm=model_version.algorithm,
            version=model_version.version,
            reason=exc.reason,
            detail=exc.detail,
        )
        raise
    detector = Detector(
        algorithm=model_version.algorithm,
        version_id=model_version.pk,
        version=model_version.version,
        threshold=model_version.threshold,
        features=tuple(model_version.features),
        pipeline=payload["pipeline"],
        merchant_stats=payload["merchant_stats"],
    )
    detector.warm_up()
    with _cache_lock:
        # Keep only what can still be asked for: the newest load per algorithm.
        for stale in [k for k, d in _cache.items() if d.algorithm == detector.algorithm]:
            del _cache[stale]
        _cache[key] = detector
    return detector


_cache: dict[tuple[int, str], Detector] = {}
_cache_lock = threading.Lock()


@sql.statement
def _active_sql() -> str:
    return (
        f"SELECT {sql.quote('id')}, {sql.quote('algorithm')}, {sql.quote('sha256')} "
        f"FROM {sql.quote(ModelVersion._meta.db_table)} WHERE {sql.quote('is_active')}"
    )


def active_detectors(algorithms: tuple[str, ...] | None = None) -> dict[str, Detector]:
    """The active detector of each requested algorithm, in the requested order.

    One small query per call notices a version activated by another process,
    so no restart is needed; the artifact itself loads once per process.
    """
    wanted = algorithms or tuple(Algorithm.values)
    # Only the keys: the full rows (histograms, metrics, parameters as JSON)
    # are read when a version is not loaded yet.
    active = {algorithm: (pk, sha256) for pk, algorithm, sha256 in sql.fetch(_active_sql(), [])}
    detectors = {}
    for algorithm in wanted:
        if algorithm not in active:
            metrics.set_active_version(algorithm, None)
            raise NoActiveModel(algorithm)
        with _cache_lock:
            detector = _cache.get(active[algorithm])
        if detector is None:
            detector = load_detector(ModelVersion.objects.get(pk=active[algorithm][0]))
        detectors[algorithm] = detector
        # Serving workers report what they serve; activation often happens in
        # a one-off process that Prometheus never scrapes.
        metrics.set_active_version(algorithm, detectors[algorithm].version)
    return detectors


def detectors_preload() -> dict[str, int | str]:
    """Load each algorithm's active version into this process's cache before
    traffic arrives, so a new or recycled worker doesn't spend its first
    request importing scikit-learn and verifying artifacts. Never raises: what
    cannot be loaded now is logged and tried again by the first request.
    Returns each algorithm's loaded version, or why it is not loaded."""
    outcome: dict[str, int | str] = {}
    for algorithm in Algorithm.values:
        try:
            outcome[algorithm] = active_detectors((algorithm,))[algorithm].version
        except NoActiveModel:
            outcome[algorithm] = "no active version"
        except ArtifactError as exc:
            outcome[algorithm] = exc.reason
        except DatabaseError as exc:
            outcome[algorithm] = f"database unavailable: {exc}"[:200]
    log.info("models.preloaded", models=outcome)
    return outcome


def model_version_activate(*, model_version: ModelVersion) -> ModelVersion:
    """Make this version the active one of its algorithm (rollback = an older one).

    The artifact is verified first, so a broken file never becomes active; the
    swap happens in one transaction under the one-active-per-algorithm constraint.
    """
    load_detector(model_version)
    with transaction.atomic():
        list(ModelVersion.objects.select_for_update().filter(algorithm=model_version.algorithm))
        ModelVersion.objects.filter(algorithm=model_version.algorithm, is_active=True).exclude(
            pk=model_version.pk
        ).update(is_active=False)
        model_version.is_active = True
        model_version.activated_at = timezone.now()
        model_version.save(update_fields=["is_active", "activated_at"])
    metrics.set_active_version(model_version.algorithm, model_version.version)
    log.info(
        "model.activated",
        algorithm=model_version.algorithm,
        version=model_version.version,
        model_version_id=model_version.pk,
    )
    return model_version
