"""Models are retrained and switched while clients keep scoring: no request
fails, and every answer was scored by one set of versions that was really
active together at some moment (never a mix of an old and a new set)."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.reliability.conftest import payload

pytestmark = pytest.mark.slow

CLIENTS = 3
# Steady, not saturating: the retraining shares the machine's cores.
PAUSE = 0.02
IF, LOF = "isolation_forest", "local_outlier_factor"


def traffic(server, client: int, stop: threading.Event) -> list[tuple[int, object]]:
    """Score new transactions (batches of 1 to 5) until told to stop."""
    session = server.session()
    answers = []
    for number in itertools.count():
        if stop.is_set():
            return answers
        batch = [
            payload(
                f"RT{client}-{number}-{i}", account=(client * 7 + number + i) % 60, minute=number
            )
            for i in range(number % 5 + 1)
        ]
        response = session.post(f"{server.url}/api/predict/", json=batch, timeout=30)
        body = response.json() if response.status_code == 200 else response.text
        answers.append((response.status_code, body))
        time.sleep(PAUSE)


def test_it_serves_every_request_while_models_are_retrained_and_switched(deployment):
    server = deployment.start(workers=2)
    stop = threading.Event()
    existed = {(1, 1)}
    with ThreadPoolExecutor(CLIENTS) as pool:
        clients = [pool.submit(traffic, server, n, stop) for n in range(CLIENTS)]
        try:
            time.sleep(0.5)
            # Retraining activates a new forest (v3), then a new LOF (v3).
            trained = deployment.manage("train_models", "--no-score", timeout=60)
            assert trained.returncode == 0, trained.stderr[-2000:]
            existed |= {(3, 1), (3, 3)}
            ids = {
                (algorithm, version): pk
                for pk, algorithm, version in deployment.query(
                    "SELECT id, algorithm, version FROM detection_modelversion"
                )
            }
            # An operator rolls back to v2 and forward again through the API,
            # always LOF first going back and the forest first going forward,
            # so a forest v2 is never active beside a LOF v3.
            staff = server.session(deployment.staff_token)
            for algorithm, version, state in [
                (LOF, 2, (3, 2)),
                (IF, 2, (2, 2)),
                (IF, 3, (3, 2)),
                (LOF, 3, (3, 3)),
            ] * 2:
                url = f"{server.url}/api/models/{ids[algorithm, version]}/activate/"
                activated = staff.post(url, timeout=30)
                assert activated.status_code == 200, activated.text
                existed.add(state)
                time.sleep(0.15)
            time.sleep(0.3)
        finally:
            stop.set()
        answers = [answer for client in clients for answer in client.result()]

    failed = [(status, body) for status, body in answers if status != 200]
    assert failed == []
    seen = {
        (item["predictions"][IF]["model_version"], item["predictions"][LOF]["model_version"])
        for _, body in answers
        for item in body
    }
    assert seen <= existed, f"scored by sets never active together: {seen - existed}"
    assert {(1, 1), (3, 3)} <= seen, "the traffic did not span the retraining"
    accepted = sum(len(body) for _, body in answers)
    stored = deployment.query(
        "SELECT count(*) FROM detection_transaction WHERE transaction_id LIKE %s", ["RT%"]
    )
    assert stored == [(accepted,)]
