"""Two instances behind a load balancer: gunicorn twice, one PostgreSQL
database, one Redis. Transactions arrive at both at once, some at both (a
client retrying on the other replica, batches in another order), some at one:
each is stored once, both instances give the same answer for it, throttling
counts in one place, and a version activated on one is used by the other."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.reliability.conftest import payload
from tests.reliability.deployment import engine, wait_until_answering

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        engine() != "postgresql",
        reason="scale-out shares one PostgreSQL database between instances; SQLite is "
        "one machine's file. CI runs this with DATABASE_URL on PostgreSQL",
    ),
]

IF, LOF = "isolation_forest", "local_outlier_factor"
ROUNDS = 10


@pytest.fixture
def redis_url():
    """A Redis database for the instances, and a key prefix of this test's own."""
    redis = pytest.importorskip("redis")
    base = getattr(settings, "REDIS_URL", None) or "redis://127.0.0.1:6379/1"
    client = redis.Redis.from_url(base)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {urlsplit(base).netloc}")
    prefix = f"scale-out-{uuid.uuid4().hex[:8]}"
    yield base, prefix, client
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


def transactions() -> list[dict]:
    # One new transaction per seeded account, each at a merchant of its own:
    # nothing one of them is scored against changes when another is stored,
    # so the same transaction must get the same scores wherever it lands.
    return [payload(f"SO{n:03d}", account=n, minute=n, merchant_id=f"MS{n:03d}") for n in range(60)]


def scores(item: dict) -> dict:
    predictions = item["predictions"]
    return {
        "flagged": item["flagged"],
        "versions": {name: p["model_version"] for name, p in predictions.items()},
        "anomalies": {name: p["is_anomaly"] for name, p in predictions.items()},
        "scores": [predictions[IF]["score"], predictions[LOF]["score"]],
    }


def verdicts(scored: dict) -> tuple:
    return scored["flagged"], scored["versions"], scored["anomalies"]


def test_it_stores_once_answers_alike_and_switches_versions_on_two_instances(deployment, redis_url):
    base, prefix, redis = redis_url
    shared = {"REDIS_URL": base, "CACHE_KEY_PREFIX": prefix}
    a = deployment.start(wait=False, **shared)
    b = deployment.start(wait=False, **shared)
    wait_until_answering(a)
    wait_until_answering(b)
    sent = transactions()
    both, only_a, only_b = sent[:40], sent[40:50], sent[50:]
    jobs = [
        (a, both),  # the same batch on both replicas, in opposite orders
        (b, both[::-1]),
        *[(a, [tx]) for tx in both[:20]],
        *[(b, [tx]) for tx in both[20:][::-1]],
        *[(b, [tx]) for tx in both[:20][::-1]],
        *[(a, [tx]) for tx in both[20:]],
        (a, only_a),
        (b, only_b),
        (b, both[10:30]),
        (a, both[30:] + both[:10]),
    ]

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda job: job[0].post("/api/predict/", job[1]), jobs))

    assert [r.status_code for r in responses if r.status_code != 200] == []
    answers: dict[str, list[dict]] = {}
    for response in responses:
        for item in response.json():
            answers.setdefault(item["transaction_id"], []).append(scores(item))
    assert sorted(answers) == [tx["transaction_id"] for tx in sent]
    for items in answers.values():
        # Same versions and verdicts; scores equal up to the last bits, which
        # depend on the batch a transaction was scored in (summation order).
        assert [verdicts(i) for i in items] == [verdicts(items[0])] * len(items)
        assert [i["scores"] for i in items] == [pytest.approx(items[0]["scores"], rel=1e-9)] * len(
            items
        )

    stored = deployment.query(
        "SELECT t.transaction_id, count(DISTINCT t.id), count(p.id), "
        "min(p.model_version_id), max(p.model_version_id) "
        "FROM detection_transaction t JOIN detection_prediction p ON p.transaction_id = t.id "
        "WHERE t.transaction_id LIKE %s GROUP BY t.transaction_id",
        ["SO%"],
    )
    active = dict(
        deployment.query("SELECT algorithm, id FROM detection_modelversion WHERE is_active")
    )
    assert len(stored) == 60
    assert {row[1:] for row in stored} == {(1, 2, min(active.values()), max(active.values()))}

    # Both instances counted their requests in the one Redis.
    counted = sum(
        int(redis.get(key)) for key in redis.scan_iter(match=f"{prefix}:*throttle:user:*")
    )
    assert counted == len(jobs)

    # A version activated through one instance is used by the other at once.
    probe = payload("SOX", account=5)
    version_2 = dict(
        deployment.query("SELECT algorithm, id FROM detection_modelversion WHERE version = 2")
    )

    def versions(server) -> dict[str, int]:
        [item] = server.post("/api/predict/?persist=false", probe).json()
        return {name: p["model_version"] for name, p in item["predictions"].items()}

    assert versions(a) == versions(b) == {IF: 1, LOF: 1}
    activated = a.post(f"/api/models/{version_2[IF]}/activate/", token=deployment.staff_token)
    assert activated.status_code == 200, activated.text
    assert versions(b) == {IF: 2, LOF: 1}
    activated = b.post(f"/api/models/{version_2[LOF]}/activate/", token=deployment.staff_token)
    assert activated.status_code == 200, activated.text
    assert versions(a) == versions(b) == {IF: 2, LOF: 2}
    ready = [server.get("/api/ready/").json()["checks"] for server in (a, b)]
    assert [(c[IF]["model_version"], c[LOF]["model_version"]) for c in ready] == [(2, 2)] * 2


def test_it_survives_the_same_batches_sent_to_both_instances_in_opposite_orders(deployment):
    # Row locks taken in opposite orders by two writers are a deadlock, which
    # PostgreSQL breaks by failing one of them. A few rounds make it likely
    # to show if the writes do not lock in one order.
    a = deployment.start(wait=False)
    b = deployment.start(wait=False)
    wait_until_answering(a)
    wait_until_answering(b)
    rounds = [
        [payload(f"SR{r}-{n:02d}", account=n, minute=n) for n in range(60)] for r in range(ROUNDS)
    ]
    failed = []
    with ThreadPoolExecutor(4) as pool:
        for batch in rounds:
            jobs = [(a, batch), (b, batch[::-1]), (b, batch), (a, batch[::-1])]
            for response in pool.map(lambda job: job[0].post("/api/predict/", job[1]), jobs):
                if response.status_code != 200:
                    failed.append((response.status_code, response.text[:200]))

    assert failed == []
    assert deployment.query(
        "SELECT count(*), count(DISTINCT transaction_id) FROM detection_transaction "
        "WHERE transaction_id LIKE %s",
        ["SR%"],
    ) == [(60 * ROUNDS, 60 * ROUNDS)]
