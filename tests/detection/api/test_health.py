"""GET /api/health/, /api/ready/ and /metrics."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connections

from detection.models import ModelVersion
from tests.detection.api.factories import tampered_version

pytestmark = pytest.mark.django_db


def test_it_answers_liveness_without_authentication(anon_client):
    response = anon_client.get("/api/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_it_is_ready_with_a_database_and_verified_active_models(anon_client, trained):
    response = anon_client.get("/api/ready/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["problems"] == []
    assert body["checks"]["database"]["ok"] is True
    for algorithm, version in trained.versions.items():
        assert body["checks"][algorithm] == {
            "ok": True,
            "detail": "loaded",
            "model_version": version.version,
        }


def test_it_is_not_ready_without_active_models_and_names_each(anon_client):
    response = anon_client.get("/api/ready/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["problems"] == [
        "isolation_forest: no active version",
        "local_outlier_factor: no active version",
    ]
    assert body["checks"]["isolation_forest"]["reason"] == "no_active_version"


def test_it_is_not_ready_when_an_artifact_fails_verification(anon_client, trained):
    tampered = tampered_version(trained, "isolation_forest")

    response = anon_client.get("/api/ready/")

    assert response.status_code == 503
    body = response.json()
    check = body["checks"]["isolation_forest"]
    assert check["ok"] is False
    assert check["reason"] == "tampered"
    assert check["model_version"] == tampered.version
    assert "checksum" in check["detail"]
    assert body["checks"]["local_outlier_factor"]["ok"] is True
    assert len(body["problems"]) == 1


def test_it_is_not_ready_when_the_database_is_unreachable(anon_client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connections["default"], "cursor", unreachable)

    response = anon_client.get("/api/ready/")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == {
        "ok": False,
        "detail": "database unreachable (OperationalError)",
    }
    assert body["problems"][0] == "database: database unreachable (OperationalError)"


def test_it_is_not_ready_when_one_model_has_no_active_version(anon_client, trained):
    ModelVersion.objects.filter(algorithm="local_outlier_factor").delete()

    response = anon_client.get("/api/ready/")

    assert response.status_code == 503
    assert response.json()["problems"] == ["local_outlier_factor: no active version"]


def test_it_exposes_prometheus_metrics(anon_client):
    response = anon_client.get("/metrics")

    assert response.status_code == 200
    assert b"django_http_requests" in response.content
