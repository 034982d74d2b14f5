"""PATCH /api/transactions/{transaction_id}/review/."""

from __future__ import annotations

import pytest

from detection.models import Review, ReviewEvent

pytestmark = pytest.mark.django_db

URL = "/api/transactions/TXH000000/review/"


def test_it_records_an_analysts_verdict(analyst_client, trained):
    response = analyst_client.patch(
        URL, {"status": "confirmed_fraud", "note": "called the customer"}, "application/json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "confirmed_fraud"
    assert body["note"] == "called the customer"
    assert body["reviewer"] == "analyst"
    assert [e["status"] for e in body["history"]] == ["confirmed_fraud"]
    review = Review.objects.get(transaction__transaction_id="TXH000000")
    assert review.status == "confirmed_fraud"


def test_it_keeps_the_history_of_verdicts(analyst_client, staff_client, trained):
    analyst_client.patch(URL, {"status": "pending"}, "application/json")
    response = staff_client.patch(
        URL, {"status": "false_positive", "note": "known traveller"}, "application/json"
    )

    body = response.json()
    assert body["status"] == "false_positive"
    assert body["reviewer"] == "staff"
    assert [(e["status"], e["reviewer"]) for e in body["history"]] == [
        ("false_positive", "staff"),
        ("pending", "analyst"),
    ]
    assert ReviewEvent.objects.count() == 2


def test_it_shows_the_review_in_listings(analyst_client, trained):
    analyst_client.patch(URL, {"status": "confirmed_fraud"}, "application/json")

    response = analyst_client.get("/api/transactions/", {"review_status": "confirmed_fraud"})

    assert [row["transaction_id"] for row in response.json()["results"]] == ["TXH000000"]


def test_it_refuses_a_viewer(user_client, trained):
    response = user_client.patch(URL, {"status": "confirmed_fraud"}, "application/json")

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert "analyst" in response.json()["detail"]
    assert not Review.objects.exists()


def test_it_refuses_an_anonymous_client(anon_client, trained):
    response = anon_client.patch(URL, {"status": "confirmed_fraud"}, "application/json")

    assert response.status_code == 401
    assert not Review.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "fraud"}, "status"),
        ({"note": "no status"}, "status"),
        ({"status": "pending", "note": "x" * 2001}, "note"),
        ({"status": "pending", "note": "nul\x00byte"}, "note"),
        ({"status": 3}, "status"),
        ([{"status": "pending"}], "__all__"),
    ],
)
def test_it_refuses_bad_input_naming_the_field(analyst_client, trained, body, field):
    response = analyst_client.patch(URL, body, "application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_input"
    assert field in {e["field"] for e in response.json()["errors"]}
    assert not Review.objects.exists()


def test_it_answers_404_for_an_unknown_transaction(analyst_client, trained):
    response = analyst_client.patch(
        "/api/transactions/TX-NOPE/review/", {"status": "pending"}, "application/json"
    )

    assert response.status_code == 404


def test_it_refuses_a_form_encoded_body(analyst_client, trained):
    response = analyst_client.patch(
        URL, "status=pending", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
