from __future__ import annotations

import pickle

import joblib
import pytest
from django.db import IntegrityError, transaction

from detection.models import ModelVersion
from detection.registry import (
    FORMAT_VERSION,
    MAGIC,
    ArtifactIncompatible,
    ArtifactMissing,
    ArtifactTampered,
    ArtifactTruncated,
    NoActiveModel,
    active_detectors,
    artifact_save,
    artifacts_dir,
    load_detector,
    model_version_activate,
)
from detection.training import models_train

pytestmark = pytest.mark.django_db


def artifact_of(model_version):
    return artifacts_dir() / model_version.artifact_path


def fresh(model_version):
    # A new process would read the row from the database and have no cache.
    from detection import registry

    registry._cache.clear()
    return ModelVersion.objects.get(pk=model_version.pk)


def test_it_loads_what_it_saved(trained):
    detector = load_detector(fresh(trained["isolation_forest"]))
    assert detector.version == 1
    assert detector.threshold == trained["isolation_forest"].threshold


def test_it_records_hash_and_versions_of_each_artifact(trained):
    import hashlib

    import sklearn

    mv = trained["local_outlier_factor"]
    assert mv.sha256 == hashlib.sha256(artifact_of(mv).read_bytes()).hexdigest()
    assert mv.format_version == FORMAT_VERSION
    assert mv.sklearn_version == sklearn.__version__
    assert not list(artifacts_dir().glob(".*.tmp")), "no temp file may be left behind"


def test_it_refuses_a_missing_artifact(trained):
    mv = trained["isolation_forest"]
    artifact_of(mv).unlink()
    with pytest.raises(ArtifactMissing):
        load_detector(fresh(mv))


def test_it_refuses_a_tampered_artifact_without_unpickling_it(trained, tmp_path):
    mv = trained["isolation_forest"]
    marker = tmp_path / "executed"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    # A well-formed artifact whose payload runs code when unpickled.
    content = artifact_of(mv).read_bytes()
    header_end = content.index(b"\n", len(MAGIC)) + 1
    payload = pickle.dumps(Exploit())
    artifact_of(mv).write_bytes(content[:header_end] + payload + b"\0" * len(content))
    with pytest.raises(ArtifactTampered):
        load_detector(fresh(mv))
    assert not marker.exists()


def test_it_refuses_a_single_flipped_byte(trained):
    mv = trained["local_outlier_factor"]
    content = bytearray(artifact_of(mv).read_bytes())
    content[-100] ^= 0xFF
    artifact_of(mv).write_bytes(bytes(content))
    with pytest.raises(ArtifactTampered):
        load_detector(fresh(mv))


def test_it_refuses_a_truncated_artifact(trained):
    mv = trained["isolation_forest"]
    content = artifact_of(mv).read_bytes()
    artifact_of(mv).write_bytes(content[: len(content) // 2])
    with pytest.raises(ArtifactTruncated):
        load_detector(fresh(mv))


def test_it_refuses_an_artifact_cut_inside_its_header(trained):
    mv = trained["isolation_forest"]
    artifact_of(mv).write_bytes(MAGIC + b'{"format_ver')
    with pytest.raises(ArtifactTruncated):
        load_detector(fresh(mv))


def test_it_refuses_a_file_that_is_not_an_artifact(trained):
    mv = trained["isolation_forest"]
    joblib.dump({"pipeline": None}, artifact_of(mv))
    with pytest.raises(ArtifactTampered):
        load_detector(fresh(mv))


def test_it_refuses_an_artifact_made_by_another_scikit_learn(trained):
    mv = fresh(trained["isolation_forest"])
    mv.sklearn_version = "0.24.2"
    with pytest.raises(ArtifactIncompatible, match=r"0\.24\.2"):
        load_detector(mv)


def test_it_refuses_an_unknown_format_version(trained):
    mv = fresh(trained["isolation_forest"])
    mv.format_version = FORMAT_VERSION + 1
    with pytest.raises(ArtifactIncompatible):
        load_detector(mv)


def test_it_writes_atomically_replacing_the_whole_file(settings, tmp_path):
    settings.ML_ARTIFACTS_DIR = tmp_path
    first = artifact_save(payload={"a": 1}, algorithm="isolation_forest", version=9)
    second = artifact_save(payload={"a": 2}, algorithm="isolation_forest", version=9)
    assert first.path == second.path
    assert first.sha256 != second.sha256
    assert [p.name for p in tmp_path.iterdir()] == ["isolation_forest-v9.joblib"]


def test_it_keeps_one_active_version_per_algorithm_and_rolls_back(trained, settings):
    newer = models_train(algorithms=["isolation_forest"])[0].model_version
    active = ModelVersion.objects.filter(is_active=True, algorithm="isolation_forest")
    assert list(active) == [newer]
    model_version_activate(model_version=trained["isolation_forest"])
    assert list(active.all()) == [trained["isolation_forest"]]
    assert active_detectors()["isolation_forest"].version == 1


def test_it_picks_up_a_version_activated_elsewhere_without_restart(trained):
    assert active_detectors()["isolation_forest"].version == 1
    newer = models_train(algorithms=["isolation_forest"], activate=False)[0].model_version
    # Another process activates it: only the database changes.
    ModelVersion.objects.filter(algorithm="isolation_forest").update(is_active=False)
    ModelVersion.objects.filter(pk=newer.pk).update(is_active=True)
    assert active_detectors()["isolation_forest"].version == 2


def test_it_refuses_to_activate_a_broken_artifact_and_keeps_the_previous(trained):
    newer = models_train(algorithms=["isolation_forest"], activate=False)[0].model_version
    artifact_of(newer).write_bytes(b"garbage")
    with pytest.raises(ArtifactTampered):
        model_version_activate(model_version=fresh(newer))
    assert (
        ModelVersion.objects.get(is_active=True, algorithm="isolation_forest")
        == trained["isolation_forest"]
    )


def test_it_enforces_one_active_version_in_the_database(trained):
    second = models_train(algorithms=["isolation_forest"], activate=False)[0].model_version
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=second.pk).update(is_active=True)


def test_it_names_the_algorithm_without_an_active_version(history):
    with pytest.raises(NoActiveModel, match="isolation_forest"):
        active_detectors()
