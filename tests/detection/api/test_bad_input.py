"""Every kind of bad input gets a 4xx naming what is wrong, never a 500, and a
batch with any bad item stores nothing."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client

from detection.api.errors import exception_handler
from detection.models import Prediction, Transaction
from tests.detection.api.factories import many_payloads, transaction_payload

pytestmark = pytest.mark.django_db

PREDICT = "/api/predict/"
STORED = 300  # the history the `trained` fixture stores


def _post_raw(client: Client, body: bytes | str, path: str = PREDICT, **kwargs: Any):
    return client.post(path, body, content_type=kwargs.pop("content_type", "application/json"))


def _assert_nothing_stored() -> None:
    assert Transaction.objects.count() == STORED
    assert not Prediction.objects.exists()


def _item(**overrides: Any) -> dict[str, Any]:
    return transaction_payload(**overrides)


# (case, body, expected [(index, field)] or None for "any")
FIELD_CASES = [
    ("wrong type: text amount", _item(amount="a lot"), [(None, "amount")]),
    ("wrong type: boolean amount", _item(amount=True), [(None, "amount")]),
    ("wrong type: text age", _item(customer_age="seventy"), [(None, "customer_age")]),
    ("wrong type: float count", _item(login_attempts=1.5), [(None, "login_attempts")]),
    ("wrong type: object id", _item(transaction_id={"a": 1}), [(None, "transaction_id")]),
    ("NaN as a string", _item(amount="NaN"), [(None, "amount")]),
    ("negative amount", _item(amount=-0.01), [(None, "amount")]),
    ("amount over a million", _item(amount=1_000_000.01), [(None, "amount")]),
    ("amount with 3 decimals", _item(amount=1.005), [(None, "amount")]),
    ("balance over ten million", _item(account_balance=10_000_001), [(None, "account_balance")]),
    ("age under 18", _item(customer_age=17), [(None, "customer_age")]),
    ("age over 120", _item(customer_age=121), [(None, "customer_age")]),
    ("duration over 10,000", _item(duration_seconds=10_001), [(None, "duration_seconds")]),
    ("negative duration", _item(duration_seconds=-1), [(None, "duration_seconds")]),
    ("too many login attempts", _item(login_attempts=11), [(None, "login_attempts")]),
    ("unknown transaction type", _item(transaction_type="Wire"), [(None, "transaction_type")]),
    ("unknown channel", _item(channel="Phone"), [(None, "channel")]),
    ("unknown occupation", _item(customer_occupation="Pilot"), [(None, "customer_occupation")]),
    ("date that is not a date", _item(timestamp="yesterday"), [(None, "timestamp")]),
    ("impossible date", _item(timestamp="2024-02-30T10:00:00"), [(None, "timestamp")]),
    ("number as a date", _item(timestamp=20230411), [(None, "timestamp")]),
    ("date before 1970", _item(timestamp="1900-01-01T00:00:00"), [(None, "timestamp")]),
    (
        "bad previous date",
        _item(previous_transaction_at="soon"),
        [(None, "previous_transaction_at")],
    ),
    ("bad IP address", _item(ip_address="999.1.1.1"), [(None, "ip_address")]),
    ("oversized location", _item(location="x" * 65), [(None, "location")]),
    ("huge string", _item(location="x" * 100_000), [(None, "location")]),
    ("oversized id", _item(transaction_id="T" * 33), [(None, "transaction_id")]),
    ("id with spaces", _item(transaction_id="TX 1"), [(None, "transaction_id")]),
    ("control character", _item(location="Miami\nDROP"), [(None, "location")]),
    ("missing field", {k: v for k, v in _item().items() if k != "amount"}, [(None, "amount")]),
    ("unknown field", _item(is_fraud=True), [(None, "is_fraud")]),
    ("a field twice under two names", _item(AccountID="AC00003"), [(None, "AccountID")]),
    ("empty object", {}, None),
    ("empty batch", [], [(None, "__all__")]),
    ("batch of 1,001", many_payloads(1001), [(None, "__all__")]),
    ("top-level string", "TX000001", [(None, "__all__")]),
    ("top-level number", 42, [(None, "__all__")]),
    ("top-level null", None, [(None, "__all__")]),
    ("non-object item", [_item(), "TX2"], [(1, "__all__")]),
    (
        "duplicate ids in a batch",
        [_item(), _item(amount=12.5), _item(transaction_id="TXN000009")],
        [(1, "transaction_id")],
    ),
    (
        "one bad item among good ones",
        [_item(transaction_id=f"TXG{i}") for i in range(3)]
        + [_item(transaction_id="TXG9", amount=-5)],
        [(3, "amount")],
    ),
    (
        "several bad items",
        [_item(transaction_id="TXG1", channel="Fax"), _item(transaction_id="TXG2", customer_age=3)],
        [(0, "channel"), (1, "customer_age")],
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"),
    [pytest.param(body, expected, id=case) for case, body, expected in FIELD_CASES],
)
def test_it_refuses_invalid_transactions_naming_each_field(user_client, trained, body, expected):
    response = _post_raw(user_client, json.dumps(body))

    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "invalid_input"
    assert "nothing was stored" in payload["detail"]
    assert all(error["message"] for error in payload["errors"])
    if isinstance(body, dict):
        # One object is a batch of one: its errors point at item 0.
        expected = [(0, field) for _, field in expected or []] or None
    if expected is not None:
        assert [(e.get("index"), e["field"]) for e in payload["errors"]] == expected
    _assert_nothing_stored()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"transaction_id": ', id="truncated"),
        pytest.param(b"{'transaction_id': 'TX1'}", id="single quotes"),
        pytest.param(b'[{"amount": NaN}]', id="NaN"),
        pytest.param(b'[{"amount": Infinity}]', id="Infinity"),
        pytest.param(b'[{"amount": -Infinity}]', id="-Infinity"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested too deeply"),
        pytest.param(b'{"location": "\xff\xfe"}', id="not UTF-8"),
        pytest.param(b'{"customer_age": 1' + b"0" * 5000 + b"}", id="5,000-digit number"),
        pytest.param(b"[1, 2,]", id="trailing comma"),
        pytest.param(b'[{"amount": 1e400}]', id="number overflowing a double"),
    ],
)
def test_it_refuses_malformed_json(user_client, trained, body):
    response = _post_raw(user_client, body)

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert "JSON" in response.json()["detail"]
    _assert_nothing_stored()


def test_it_refuses_an_empty_body(user_client, trained):
    response = user_client.post(PREDICT, "", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("the request body is empty")


def test_it_refuses_a_body_that_is_not_json(user_client, trained):
    response = _post_raw(user_client, "transaction_id=TX1", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_it_refuses_a_body_over_the_size_limit(user_client, trained, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000

    response = _post_raw(user_client, json.dumps(many_payloads(40)))

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert "10000 bytes" in response.json()["detail"]
    _assert_nothing_stored()


def test_it_refuses_a_body_over_the_default_limit_of_2_mb(user_client, trained):
    body = json.dumps(many_payloads(10)).encode() + b" " * (2 * 1024 * 1024)

    response = _post_raw(user_client, body)

    assert response.status_code == 413
    _assert_nothing_stored()


def test_it_refuses_an_oversized_form_body_without_reading_it(analyst, trained, settings):
    # The session's CSRF check asks for the form, which only the JSON parser
    # could read: the answer is a JSON 415, before Django reads the body.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    client = Client(enforce_csrf_checks=True)
    client.force_login(analyst)
    client.cookies["csrftoken"] = "a" * 32

    response = client.post(
        PREDICT, "a=" + "x" * 5_000, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_it_turns_djangos_request_data_too_big_into_a_json_413():
    response = exception_handler(RequestDataTooBig("too big"), {})

    assert response.status_code == 413
    assert response.data == {
        "error": "payload_too_large",
        "detail": "the request body is too large",
    }


def test_it_turns_an_unexpected_error_into_a_logged_json_500(caplog):
    with caplog.at_level(logging.ERROR):
        response = exception_handler(RuntimeError("boom"), {"view": None})

    assert response.status_code == 500
    assert response.data == {
        "error": "server_error",
        "detail": "unexpected error; it has been logged",
    }
    [record] = [r for r in caplog.records if "api.unhandled_error" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "boom" in record.getMessage()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("models=random_forest", "models"),
        ("models=isolation_forest,xgboost", "models"),
        ("models=", "models"),
        ("models=,", "models"),
        ("persist=maybe", "persist"),
        ("persist=", "persist"),
    ],
)
def test_it_refuses_bad_query_parameters(user_client, trained, query, field):
    response = user_client.post(
        f"{PREDICT}?{query}", transaction_payload(), content_type="application/json"
    )

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    _assert_nothing_stored()


def test_it_refuses_models_in_the_query_of_a_one_model_path(user_client, trained):
    response = user_client.post(
        "/api/models/isolation_forest/predict/?models=local_outlier_factor",
        transaction_payload(),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "models"


def test_it_answers_an_unknown_api_path_with_json_404(user_client):
    response = user_client.get("/api/nothing-here/")

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "no API operation at /api/nothing-here/",
    }


def test_it_points_to_the_path_with_its_trailing_slash(user_client, trained):
    response = user_client.post("/api/predict", transaction_payload(), "application/json")

    assert response.status_code == 404
    assert response.json()["detail"].endswith("did you mean /api/predict/ ?")


def test_it_answers_a_method_an_operation_does_not_have_with_json_405(user_client):
    response = user_client.delete("/api/models/")

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
