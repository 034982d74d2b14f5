"""GET /api/models/, /api/models/{id}/ and POST /api/models/{id}/activate/."""

from __future__ import annotations

import pytest

from detection.models import ModelVersion
from tests.detection.api.factories import extra_version, tampered_version, transaction_payload

pytestmark = pytest.mark.django_db

FIELDS = {
    "id",
    "algorithm",
    "version",
    "is_active",
    "trained_at",
    "activated_at",
    "training_rows",
    "params",
    "features",
    "threshold",
    "metrics",
}


def test_it_lists_model_versions_active_first(user_client, trained):
    newer = extra_version(trained, "isolation_forest")

    response = user_client.get("/api/models/")

    assert response.status_code == 200
    body = response.json()
    assert [(m["algorithm"], m["version"], m["is_active"]) for m in body] == [
        ("isolation_forest", 1, True),
        ("local_outlier_factor", 1, True),
        ("isolation_forest", newer.version, False),
    ]
    assert set(body[0]) == FIELDS
    assert body[0]["training_rows"] == 300
    assert body[0]["features"] == trained.versions["isolation_forest"].features
    assert body[0]["params"]["n_estimators"] > 0
    assert body[0]["threshold"] == trained.versions["isolation_forest"].threshold


def test_it_lists_nothing_before_training(user_client):
    response = user_client.get("/api/models/")

    assert response.status_code == 200
    assert response.json() == []


def test_it_shows_one_version(user_client, trained):
    version = trained.versions["local_outlier_factor"]

    response = user_client.get(f"/api/models/{version.pk}/")

    assert response.status_code == 200
    assert response.json()["id"] == version.pk
    assert response.json()["algorithm"] == "local_outlier_factor"


def test_it_answers_404_for_an_unknown_version(user_client, trained):
    response = user_client.get("/api/models/999999/")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_it_lets_staff_activate_another_version(staff_client, trained):
    newer = extra_version(trained, "isolation_forest")

    response = staff_client.post(f"/api/models/{newer.pk}/activate/")

    assert response.status_code == 200
    assert response.json()["is_active"] is True
    assert response.json()["activated_at"] is not None
    assert ModelVersion.objects.get(algorithm="isolation_forest", is_active=True) == newer
    # The other model is untouched.
    assert ModelVersion.objects.get(algorithm="local_outlier_factor").is_active


def test_it_scores_with_the_newly_activated_version(staff_client, trained):
    newer = extra_version(trained, "isolation_forest")
    staff_client.post(f"/api/models/{newer.pk}/activate/")

    response = staff_client.post(
        "/api/predict/?persist=false",
        transaction_payload(),
        content_type="application/json",
    )

    assert response.json()[0]["predictions"]["isolation_forest"]["model_version"] == newer.version


def test_it_refuses_to_activate_a_version_whose_artifact_fails_verification(staff_client, trained):
    tampered = tampered_version(trained, "isolation_forest")
    original = trained.versions["isolation_forest"]
    ModelVersion.objects.filter(pk=tampered.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=original.pk).update(is_active=True)

    response = staff_client.post(f"/api/models/{tampered.pk}/activate/")

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "conflict"
    assert body["reason"] == "tampered"
    assert ModelVersion.objects.get(algorithm="isolation_forest", is_active=True) == original


def test_it_answers_404_when_activating_an_unknown_version(staff_client, trained):
    response = staff_client.post("/api/models/999999/activate/")

    assert response.status_code == 404
