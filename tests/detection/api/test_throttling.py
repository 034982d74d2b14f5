"""Rate limits: counted per user in the shared cache, answered with 429 and
Retry-After."""

from __future__ import annotations

import time
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from rest_framework.settings import api_settings

from detection.api.throttling import parse_rate

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/minute", "user": "3/minute"},
    }
    # The counters live in the shared cache (Redis in CI, shared by parallel
    # workers): a key prefix of this test's own keeps them apart.
    settings.CACHES = {
        alias: {**config, "KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}"}
        for alias, config in settings.CACHES.items()
    }
    assert api_settings.DEFAULT_THROTTLE_RATES["user"] == "3/minute"


def test_it_answers_429_with_retry_after_past_the_rate(user_client, low_rates):
    statuses = [user_client.get("/api/models/").status_code for _ in range(3)]
    response = user_client.get("/api/models/")

    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert response.json()["error"] == "throttled"
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_it_counts_every_operation_together(user_client, low_rates, trained):
    user_client.get("/api/models/")
    user_client.get("/api/transactions/")
    user_client.post("/api/predict/?persist=false", [], content_type="application/json")

    assert user_client.get("/api/transactions/TXH000000/").status_code == 429


def test_it_counts_each_user_separately(user_client, analyst_client, low_rates):
    for _ in range(3):
        user_client.get("/api/models/")

    assert user_client.get("/api/models/").status_code == 429
    assert analyst_client.get("/api/models/").status_code == 200


def test_it_never_throttles_the_probes(anon_client, low_rates):
    statuses = {anon_client.get("/api/health/").status_code for _ in range(10)}

    assert statuses == {200}


def test_it_counts_in_the_shared_cache(user_client, user, low_rates):
    user_client.get("/api/models/")

    window = int(time.time() // 60)
    # The request may have fallen in the minute before this one.
    counts = [cache.get(f"throttle:user:{user.pk}:{w}") for w in (window - 1, window)]
    assert 1 in counts


def test_it_defaults_to_rates_that_allow_the_performance_targets():
    # 8 clients at 400 requests/s between them, one of them alone well above.
    count, seconds = parse_rate(django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"])

    assert count / seconds >= 400
