"""Broken model artifacts: refused before a byte is unpickled, reported by
name on the API, in the log and in the metrics; and a failed artifact write
leaves the active versions and the artifacts folder as they were."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from detection.models import ModelVersion
from detection.registry import MAGIC, artifacts_dir
from detection.scoring import transactions_score
from detection.training import models_train
from tests.factories import item
from tests.reliability.conftest import payload

FAILURES = "anomaly_artifact_verification_failures_total"


class _Exploit:
    """Unpickling this creates a file: proof that the payload ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def forged_artifact(original: bytes, marker: Path) -> bytes:
    """What an attacker with write access to the folder would plant: a
    well-formed artifact (magic, header, payload of the declared length) whose
    payload runs code when unpickled. Only the checksum in the database can
    tell it apart."""
    header = json.loads(original[len(MAGIC) : original.index(b"\n", len(MAGIC))])
    body = pickle.dumps(_Exploit(marker))
    header["payload_bytes"] = len(body)
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + body


@pytest.mark.slow
def test_it_refuses_tampered_and_truncated_artifacts_by_name_without_running_them(
    deployment, tmp_path
):
    marker = tmp_path / "payload-ran"
    forest = deployment.artifacts / "isolation_forest-v1.joblib"
    lof = deployment.artifacts / "local_outlier_factor-v1.joblib"
    originals = {forest: forest.read_bytes(), lof: lof.read_bytes()}
    forest.write_bytes(forged_artifact(originals[forest], marker))
    lof.write_bytes(originals[lof][: len(originals[lof]) // 2])
    # A fresh process: nothing verified is cached yet.
    server = deployment.start()

    both = server.post("/api/predict/", payload("TXF1", account=1))
    lof_only = server.post("/api/predict/?models=local_outlier_factor", payload("TXF2", account=2))
    ready = server.get("/api/ready/")

    assert both.status_code == 503
    assert both.json() | {"detail": ""} == {
        "error": "model_unavailable",
        "detail": "",
        "algorithm": "isolation_forest",
        "reason": "tampered",
        "model_version": 1,
    }
    assert both.json()["detail"].startswith("isolation_forest v1: the artifact fails verification")
    assert lof_only.status_code == 503
    assert lof_only.json()["algorithm"] == "local_outlier_factor"
    assert lof_only.json()["reason"] == "truncated"
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] is True
    assert (checks["isolation_forest"]["reason"], checks["isolation_forest"]["model_version"]) == (
        "tampered",
        1,
    )
    assert checks["local_outlier_factor"]["reason"] == "truncated"

    assert not marker.exists(), "the planted payload was unpickled"
    stored = "SELECT count(*) FROM detection_transaction WHERE transaction_id LIKE %s"
    assert deployment.query(stored, ["TXF%"]) == [(0,)]
    # Three refusals of each: the worker's preload, the predict request and
    # the readiness check.
    assert server.metric(FAILURES, algorithm="isolation_forest", reason="tampered") == 3
    assert server.metric(FAILURES, algorithm="local_outlier_factor", reason="truncated") == 3
    [preload] = [line for line in server.log_lines() if line["message"] == "models.preloaded"]
    assert preload["anomaly.models"] == {
        "isolation_forest": "tampered",
        "local_outlier_factor": "truncated",
    }
    logged = [
        (line["anomaly.algorithm"], line["anomaly.reason"], line["log.level"])
        for line in server.log_lines()
        if line["message"] == "artifact.verification_failed"
    ]
    assert sorted(set(logged)) == [
        ("isolation_forest", "tampered", "error"),
        ("local_outlier_factor", "truncated", "error"),
    ]

    # Restored from backup, the files are verified and used: no restart.
    for path, content in originals.items():
        path.write_bytes(content)
    assert server.get("/api/ready/").status_code == 200
    assert server.post("/api/predict/", payload("TXF3", account=3)).status_code == 200


# --- a failed artifact write (in-process: the failure comes from the disk) ---


def _state() -> list[tuple[str, int, bool]]:
    return sorted(ModelVersion.objects.values_list("algorithm", "version", "is_active"))


def _folder_listing() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in artifacts_dir().iterdir() if p.is_file()}


def _scored_versions() -> dict[str, int]:
    [result] = transactions_score(items=[item(transaction_id="TXW1")], persist=False)
    return {name: score.model_version for name, score in result.predictions.items()}


@pytest.mark.django_db
def test_it_keeps_the_active_versions_when_the_artifact_cannot_be_renamed_into_place(trained):
    before, files = _state(), _folder_listing()
    # The new artifact's name is taken by a folder: the temporary file is
    # written in full, then moving it into place fails, as on a full or
    # read-only volume.
    (artifacts_dir() / "isolation_forest-v2.joblib").mkdir()
    (artifacts_dir() / "isolation_forest-v2.joblib" / "occupied").write_text("")

    with pytest.raises(OSError):
        models_train()

    assert _state() == before
    assert _folder_listing() == files, "nothing half-written may be left behind"
    assert _scored_versions() == {"isolation_forest": 1, "local_outlier_factor": 1}


@pytest.mark.django_db
def test_it_keeps_the_active_versions_when_the_artifacts_folder_is_unusable(
    trained, settings, tmp_path
):
    before, folder = _state(), artifacts_dir()
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("")
    settings.ML_ARTIFACTS_DIR = not_a_folder / "artifacts"

    with pytest.raises(OSError):
        models_train()

    assert _state() == before
    assert not_a_folder.read_text() == ""
    settings.ML_ARTIFACTS_DIR = folder
    assert _scored_versions() == {"isolation_forest": 1, "local_outlier_factor": 1}
