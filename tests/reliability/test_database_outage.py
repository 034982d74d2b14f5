"""The database goes away under a running server, then comes back: the API
says 503 in JSON meanwhile (liveness stays up, so the orchestrator does not
restart a healthy process), and serves again without a restart."""

from __future__ import annotations

import time

import pytest

from tests.reliability.conftest import payload
from tests.reliability.deployment import admin, engine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        engine() != "postgresql",
        reason="needs PostgreSQL: a SQLite file stays open in the worker and root "
        "ignores file permissions, so its outage cannot be produced from outside; "
        "CI runs this against PostgreSQL",
    ),
]


def database_down(name: str) -> None:
    # New connections are refused and the server's current ones are cut, as
    # when PostgreSQL restarts or fails over.
    admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


def database_up(name: str) -> None:
    admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_it_answers_503_json_while_the_database_is_down_and_recovers(deployment):
    server = deployment.start()
    assert server.post("/api/predict/", payload("TXD1", account=1)).status_code == 200

    database_down(deployment.database.name)
    try:
        predict = server.post("/api/predict/", payload("TXD2", account=2))
        listing = server.get("/api/transactions/")
        ready = server.get("/api/ready/")
        health = server.get("/api/health/")
    finally:
        database_up(deployment.database.name)

    for response in (predict, listing, ready):
        assert response.status_code == 503, response.text[:500]
        assert response.headers["Content-Type"] == "application/json"
    assert predict.json()["error"] == "database_unavailable"
    assert ready.json()["checks"]["database"]["ok"] is False
    assert health.status_code == 200

    # Back without a restart; the client's retry of the refused one is stored once.
    deadline = time.monotonic() + 10
    while server.get("/api/ready/").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    retried = server.post("/api/predict/", payload("TXD2", account=2))
    assert retried.status_code == 200
    assert server.get("/api/ready/").status_code == 200
    assert deployment.query(
        "SELECT transaction_id, count(*) FROM detection_transaction "
        "WHERE transaction_id LIKE %s GROUP BY transaction_id ORDER BY transaction_id",
        ["TXD%"],
    ) == [("TXD1", 1), ("TXD2", 1)]
