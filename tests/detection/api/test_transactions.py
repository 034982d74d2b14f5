"""GET /api/transactions/, /api/transactions/{id}/ and
/api/accounts/{account_id}/transactions/."""

from __future__ import annotations

import pytest

from detection.bootstrap import analyst_group_ensure
from detection.models import Transaction
from detection.reviews import review_set
from tests.detection.api.factories import (
    account_id,
    extra_version,
    many_payloads,
    suspicious_payload,
    transaction_payload,
)

pytestmark = pytest.mark.django_db

LIST = "/api/transactions/"


@pytest.fixture
def scored(user_client, trained):
    """Three scored new transactions on top of the 300 stored ones."""
    payloads = [transaction_payload("TXN000001"), suspicious_payload("TXS000001")]
    payloads.append(transaction_payload("TXN000002", account=5))
    response = user_client.post("/api/predict/", payloads, content_type="application/json")
    assert response.status_code == 200
    return {item["transaction_id"]: item for item in response.json()}


def test_it_lists_transactions_newest_first_with_pagination(user_client, scored):
    response = user_client.get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 303
    assert len(body["results"]) == 50
    assert body["next"].endswith("page=2")
    times = [row["timestamp"] for row in body["results"]]
    assert times == sorted(times, reverse=True)
    assert body["results"][0]["transaction_id"] == "TXS000001"


def test_it_orders_by_time_ascending_on_request(user_client, scored):
    response = user_client.get(LIST, {"ordering": "timestamp", "page_size": 10})

    times = [row["timestamp"] for row in response.json()["results"]]
    assert times == sorted(times)
    assert response.json()["results"][0]["transaction_id"].startswith("TXH")


def test_it_shows_each_transactions_latest_predictions_and_reasons(user_client, scored):
    response = user_client.get(LIST, {"page_size": 3})

    row = next(r for r in response.json()["results"] if r["transaction_id"] == "TXS000001")
    assert row["flagged"] is True
    assert row["reasons"] == scored["TXS000001"]["reasons"]
    for algorithm, prediction in scored["TXS000001"]["predictions"].items():
        assert row["predictions"][algorithm]["score"] == pytest.approx(prediction["score"])
        assert row["predictions"][algorithm]["model_version"] == prediction["model_version"]
    assert row["review"] is None
    assert row["amount"] == 95000.0


def test_it_caps_the_page_size(user_client, trained):
    response = user_client.get(LIST, {"page_size": 100_000})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 300  # all there is, under the cap of 500


def test_it_caps_the_page_size_at_500(user_client, trained):
    user_client.post("/api/predict/", many_payloads(300), content_type="application/json")

    response = user_client.get(LIST, {"page_size": 100_000})

    assert len(response.json()["results"]) == 500


@pytest.mark.parametrize("page_size", [5, 200])
def test_it_lists_a_page_in_a_bounded_number_of_queries(
    user_client, scored, django_assert_max_num_queries, page_size
):
    # A reviewed transaction and a second version's predictions on the page too.
    review_set(
        transaction=Transaction.objects.get(transaction_id="TXS000001"),
        status="confirmed_fraud",
        reviewer=None,
    )

    # token + count + page + predictions (with their versions)
    with django_assert_max_num_queries(4):
        response = user_client.get(LIST, {"page_size": page_size})

    assert len(response.json()["results"]) == page_size


def test_it_filters_by_account(user_client, scored):
    response = user_client.get(LIST, {"account_id": account_id(5), "page_size": 500})

    rows = response.json()["results"]
    assert rows
    assert {row["account_id"] for row in rows} == {account_id(5)}
    assert "TXN000002" in {row["transaction_id"] for row in rows}


def test_it_filters_by_flagged(user_client, scored):
    flagged = user_client.get(LIST, {"flagged": "true"}).json()["results"]
    not_flagged = user_client.get(LIST, {"flagged": "false"}).json()["results"]

    assert "TXS000001" in {row["transaction_id"] for row in flagged}
    assert all(row["flagged"] is True for row in flagged)
    assert all(row["flagged"] is False for row in not_flagged)
    # Unscored history has no verdict and is in neither listing.
    assert len(flagged) + len(not_flagged) == 3


def test_it_filters_by_review_status(user_client, scored):
    review_set(
        transaction=Transaction.objects.get(transaction_id="TXS000001"),
        status="confirmed_fraud",
        reviewer=None,
    )

    confirmed = user_client.get(LIST, {"review_status": "confirmed_fraud"}).json()
    unreviewed = user_client.get(LIST, {"review_status": "unreviewed"}).json()

    assert [row["transaction_id"] for row in confirmed["results"]] == ["TXS000001"]
    assert confirmed["results"][0]["review"]["status"] == "confirmed_fraud"
    assert unreviewed["count"] == 302


def test_it_filters_by_time(user_client, scored):
    response = user_client.get(LIST, {"since": "2024-03-02", "until": "2024-03-03T00:00:00Z"})

    ids = {row["transaction_id"] for row in response.json()["results"]}
    assert ids == {"TXN000001", "TXN000002", "TXS000001"}


def test_it_shows_one_transaction_with_predictions_review_and_history(
    user_client, analyst, scored, trained
):
    transaction = Transaction.objects.get(transaction_id="TXS000001")
    review_set(transaction=transaction, status="pending", note="looking", reviewer=analyst)
    review_set(transaction=transaction, status="confirmed_fraud", note="called", reviewer=analyst)

    response = user_client.get("/api/transactions/TXS000001/")

    assert response.status_code == 200
    body = response.json()
    assert body["transaction_id"] == "TXS000001"
    assert body["location"] == "Anchorage"
    assert set(body["predictions"]) == {"isolation_forest", "local_outlier_factor"}
    assert len(body["prediction_history"]) == 2
    assert body["review"]["status"] == "confirmed_fraud"
    assert body["review"]["reviewer"] == "analyst"
    assert [e["status"] for e in body["review"]["history"]] == ["confirmed_fraud", "pending"]
    assert body["review"]["history"][1]["note"] == "looking"


def test_it_prefers_the_active_versions_prediction(user_client, scored, trained, staff_client):
    newer = extra_version(trained, "isolation_forest")
    staff_client.post(f"/api/models/{newer.pk}/activate/")
    user_client.post("/api/predict/", transaction_payload(), content_type="application/json")

    body = user_client.get("/api/transactions/TXN000001/").json()

    assert body["predictions"]["isolation_forest"]["model_version"] == newer.version
    assert len(body["prediction_history"]) == 3


def test_it_answers_404_for_an_unknown_transaction(user_client, trained):
    response = user_client.get("/api/transactions/TX-NOPE/")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_it_lists_one_accounts_transactions(user_client, scored):
    response = user_client.get(f"/api/accounts/{account_id(3)}/transactions/")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert {row["account_id"] for row in rows} == {account_id(3)}
    assert {"TXN000001", "TXS000001"} <= {row["transaction_id"] for row in rows}


def test_it_filters_one_accounts_transactions(user_client, scored):
    response = user_client.get(f"/api/accounts/{account_id(3)}/transactions/", {"flagged": "true"})

    assert [row["transaction_id"] for row in response.json()["results"]] == ["TXS000001"]


def test_it_answers_404_for_an_unknown_account(user_client, trained):
    response = user_client.get("/api/accounts/AC99999/transactions/")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"flagged": "maybe"}, "flagged"),
        ({"review_status": "escalated"}, "review_status"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-45"}, "until"),
        ({"since": "2024-03-02", "until": "2024-03-01"}, "until"),
        ({"ordering": "amount"}, "ordering"),
        ({"account_id": "A" * 33}, "account_id"),
    ],
)
def test_it_refuses_bad_filters_naming_the_field(user_client, trained, params, field):
    response = user_client.get(LIST, params)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_input"
    assert [e["field"] for e in body["errors"]] == [field]


def test_it_answers_404_for_a_page_past_the_end(user_client, trained):
    response = user_client.get(LIST, {"page": 99})

    assert response.status_code == 404


def test_it_lets_a_session_user_browse_the_api(client, user, trained):
    analyst_group_ensure()
    client.force_login(user)

    response = client.get(LIST, headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert b"<html" in response.content
