"""A gunicorn worker loads the active models as it starts, before it serves
anything: a new or recycled worker's first request must not be the one that
waits seconds for scikit-learn's import and the artifacts' verification."""

from __future__ import annotations

import time

from tests.reliability.conftest import payload


def _preloads(server) -> list[dict]:
    return [line for line in server.log_lines() if line["message"] == "models.preloaded"]


def test_each_worker_loads_the_active_models_before_its_first_request(deployment):
    server = deployment.start(workers=2)
    deadline = time.monotonic() + 60
    while len(_preloads(server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)

    preloads = _preloads(server)
    assert {line["process.pid"] for line in preloads} == set(server.worker_pids())
    for line in preloads:
        assert line["anomaly.models"] == {"isolation_forest": 1, "local_outlier_factor": 1}
    # In each worker's log, the preload comes before any request it served.
    assert server.post("/api/predict/", payload("TXP1", account=1)).status_code == 200
    lines = server.log_lines()
    for pid in server.worker_pids():
        own = [line["message"] for line in lines if line["process.pid"] == pid]
        requests = [i for i, message in enumerate(own) if message.startswith(("GET ", "POST "))]
        assert own.index("models.preloaded") < min(requests, default=len(own))
