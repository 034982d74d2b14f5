"""POST /api/predict/ and /api/models/{algorithm}/predict/."""

from __future__ import annotations

import pytest

from detection.models import Algorithm, Prediction, Transaction
from tests.detection.api.factories import (
    OLD_SYSTEM_PAYLOAD,
    many_payloads,
    suspicious_payload,
    tampered_version,
    transaction_payload,
)

pytestmark = pytest.mark.django_db

PREDICT = "/api/predict/"


def test_it_scores_one_transaction_with_both_models_and_stores_it(user_client, trained):
    response = user_client.post(PREDICT, transaction_payload(), content_type="application/json")

    assert response.status_code == 200
    [item] = response.json()
    assert set(item) == {"transaction_id", "flagged", "predictions", "reasons", "stored"}
    assert item["transaction_id"] == "TXN000001"
    assert item["stored"] is True
    assert list(item["predictions"]) == list(Algorithm.values)
    for algorithm, prediction in item["predictions"].items():
        assert set(prediction) == {"model_version", "score", "threshold", "is_anomaly"}
        assert prediction["model_version"] == trained.versions[algorithm].version
        assert prediction["is_anomaly"] == (prediction["score"] >= prediction["threshold"])
    assert item["flagged"] == all(p["is_anomaly"] for p in item["predictions"].values())
    stored = Transaction.objects.get(transaction_id="TXN000001")
    assert stored.flagged == item["flagged"]
    assert Prediction.objects.filter(transaction=stored).count() == 2


def test_it_flags_an_obviously_suspicious_transaction(user_client, trained):
    response = user_client.post(
        PREDICT, [transaction_payload(), suspicious_payload()], content_type="application/json"
    )

    normal, suspicious = response.json()
    assert suspicious["flagged"] is True
    assert suspicious["reasons"]
    assert (
        suspicious["predictions"]["isolation_forest"]["score"]
        > (normal["predictions"]["isolation_forest"]["score"])
    )


def test_it_answers_in_input_order(user_client, trained):
    payloads = many_payloads(30)[::-1]

    response = user_client.post(PREDICT, payloads, content_type="application/json")

    assert [item["transaction_id"] for item in response.json()] == [
        p["transaction_id"] for p in payloads
    ]


def test_it_does_not_store_an_id_twice_and_scores_the_stored_record(user_client, trained):
    original = transaction_payload()
    first = user_client.post(PREDICT, original, content_type="application/json")
    retry = user_client.post(
        PREDICT, transaction_payload(amount=99_999.0), content_type="application/json"
    )

    assert retry.status_code == 200
    assert Transaction.objects.filter(transaction_id="TXN000001").count() == 1
    assert Transaction.objects.get(transaction_id="TXN000001").amount == original["amount"]
    # The stored record is what was scored, not the retry's body.
    assert retry.json()[0]["predictions"] == first.json()[0]["predictions"]
    assert Prediction.objects.filter(transaction__transaction_id="TXN000001").count() == 2


def test_it_scores_without_storing_when_persist_is_false(user_client, trained):
    response = user_client.post(
        f"{PREDICT}?persist=false", transaction_payload(), content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json()[0]["stored"] is False
    assert not Transaction.objects.filter(transaction_id="TXN000001").exists()
    assert not Prediction.objects.exists()


@pytest.mark.parametrize("algorithm", Algorithm.values)
def test_it_scores_with_one_model_chosen_by_query(user_client, trained, algorithm):
    response = user_client.post(
        f"{PREDICT}?models={algorithm}", transaction_payload(), content_type="application/json"
    )

    assert response.status_code == 200
    [item] = response.json()
    assert list(item["predictions"]) == [algorithm]
    assert item["flagged"] == item["predictions"][algorithm]["is_anomaly"]
    assert Prediction.objects.get().model_version == trained.versions[algorithm]


@pytest.mark.parametrize("algorithm", Algorithm.values)
def test_it_scores_with_the_model_named_in_the_path(user_client, trained, algorithm):
    response = user_client.post(
        f"/api/models/{algorithm}/predict/",
        transaction_payload(),
        content_type="application/json",
    )

    assert response.status_code == 200
    assert list(response.json()[0]["predictions"]) == [algorithm]


def test_it_answers_404_for_an_unknown_model_in_the_path(user_client, trained):
    response = user_client.post(
        "/api/models/random_forest/predict/", transaction_payload(), content_type="application/json"
    )

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_it_scores_a_batch_of_1000(user_client, trained):
    response = user_client.post(PREDICT, many_payloads(1000), content_type="application/json")

    assert response.status_code == 200
    assert len(response.json()) == 1000
    assert Transaction.objects.filter(transaction_id__startswith="TXB").count() == 1000


def test_it_accepts_the_earlier_systems_payload_unchanged(user_client, trained):
    response = user_client.post(PREDICT, OLD_SYSTEM_PAYLOAD, content_type="application/json")

    assert response.status_code == 200
    assert [item["transaction_id"] for item in response.json()] == ["TX000001", "TX000002"]
    stored = Transaction.objects.get(transaction_id="TX000001")
    assert stored.ip_address == "162.198.218.92"
    assert stored.device_id == "D000380"
    assert stored.previous_transaction_at is not None


def test_it_answers_503_when_a_model_has_no_active_version(user_client, trained):
    trained.versions["local_outlier_factor"].delete()

    response = user_client.post(PREDICT, transaction_payload(), content_type="application/json")

    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "model_unavailable"
    assert body["algorithm"] == "local_outlier_factor"
    assert body["reason"] == "no_active_version"
    assert not Transaction.objects.filter(transaction_id="TXN000001").exists()


def test_it_still_scores_with_the_other_model_when_one_has_no_active_version(user_client, trained):
    trained.versions["local_outlier_factor"].delete()

    response = user_client.post(
        f"{PREDICT}?models=isolation_forest", transaction_payload(), content_type="application/json"
    )

    assert response.status_code == 200


def test_it_answers_503_when_an_artifact_fails_verification(user_client, trained):
    tampered = tampered_version(trained, "isolation_forest")

    response = user_client.post(PREDICT, transaction_payload(), content_type="application/json")

    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "model_unavailable"
    assert body["algorithm"] == "isolation_forest"
    assert body["reason"] == "tampered"
    assert body["model_version"] == tampered.version
    assert "fails verification" in body["detail"]
    assert not Transaction.objects.filter(transaction_id="TXN000001").exists()
