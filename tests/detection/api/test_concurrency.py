"""Requests racing with the same transaction ids, against a live server: each
transaction is stored once and every request gets its scores."""

from __future__ import annotations

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
from rest_framework.authtoken.models import Token

from detection.models import Prediction, Transaction
from tests.detection.api.factories import many_payloads, transaction_payload

pytestmark = pytest.mark.django_db(transaction=True)


def _race(live_server, token: str, bodies: list[Any]) -> list[tuple[int, Any]]:
    """POST every body to /api/predict/ at the same moment, one thread each."""
    address = urlsplit(live_server.url)
    start = threading.Barrier(len(bodies))

    def post(body: Any) -> tuple[int, Any]:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        payload = json.dumps(body)
        headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
        start.wait()
        try:
            connection.request("POST", "/api/predict/", payload, headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


@pytest.fixture
def token(user) -> str:
    return Token.objects.create(user=user).key


def test_it_stores_a_transaction_once_when_two_requests_race(live_server, trained, token):
    results = _race(live_server, token, [transaction_payload(), transaction_payload()])

    assert [status for status, _ in results] == [200, 200]
    assert Transaction.objects.filter(transaction_id="TXN000001").count() == 1
    assert Prediction.objects.filter(transaction__transaction_id="TXN000001").count() == 2
    first, second = (body[0] for _, body in results)
    assert first["predictions"] == second["predictions"]
    assert first["stored"] and second["stored"]


@pytest.mark.parametrize("round_", range(3))
def test_it_stores_each_transaction_of_racing_batches_once(live_server, trained, token, round_):
    batch = many_payloads(40, f"TXR{round_}-")
    # Requests in opposite orders with overlapping ids: on PostgreSQL, rows
    # written in request order would deadlock (a race: hence a few rounds).
    bodies = [batch, batch[::-1], batch[:25], batch[15:][::-1], batch[::2], batch[::-3]]

    results = _race(live_server, token, bodies)

    assert [status for status, _ in results] == [200] * len(bodies)
    for body, (_, answer) in zip(bodies, results, strict=True):
        assert [item["transaction_id"] for item in answer] == [p["transaction_id"] for p in body]
    assert Transaction.objects.filter(transaction_id__startswith="TXR").count() == 40
    assert Prediction.objects.filter(transaction__transaction_id__startswith="TXR").count() == 80
    # The same stored record is scored whichever request stored it (to the
    # last bits of floating point, which depend on the batch's shape).
    seen: dict[str, Any] = {}
    for _, answer in results:
        for item in answer:
            first = seen.setdefault(item["transaction_id"], item["predictions"])
            for algorithm, prediction in item["predictions"].items():
                assert prediction["score"] == pytest.approx(first[algorithm]["score"])
                assert prediction["is_anomaly"] == first[algorithm]["is_anomaly"]
