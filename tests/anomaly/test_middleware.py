"""One ECS line per request, a request id end to end, process gauges."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog
from django.http import HttpRequest, HttpResponse
from django.urls import path

from anomaly import middleware
from anomaly.logging import ecs_formatter


def _ok(request: HttpRequest) -> HttpResponse:
    structlog.get_logger("detection").info("transactions.flagged", count=2)
    return HttpResponse("ok")


def _needs_user(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(request.user.is_authenticated))


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("scoring exploded")


def _gone(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no such transaction", status=404)


urlpatterns = [
    path("ok/", _ok),
    path("user/", _needs_user),
    path("boom/", _boom),
    path("gone/", _gone),
]

pytestmark = pytest.mark.urls(__name__)


@pytest.fixture
def lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ecs_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def _request_lines(lines) -> list[dict]:
    return [line for line in lines() if line.get("event.action") == "http.request"]


def test_it_logs_one_ecs_line_per_request(client, lines):
    response = client.get("/ok/?q=secret", HTTP_USER_AGENT="pytest")

    (line,) = _request_lines(lines)
    assert response.status_code == 200
    assert line["message"] == "GET /ok/ 200"
    assert line["http.request.method"] == "GET"
    assert line["url.path"] == "/ok/"  # the query string may hold secrets
    assert line["http.response.status_code"] == 200
    assert isinstance(line["event.duration"], int) and line["event.duration"] > 0
    assert line["client.ip"] == "127.0.0.1"
    assert line["http.request.id"] == response["X-Request-ID"]
    assert line["user_agent.original"] == "pytest"
    assert line["event.outcome"] == "success"
    assert line["ecs.version"] and line["@timestamp"]
    assert "user.id" not in line


def test_it_tags_the_views_own_lines_with_the_request_id(client, lines):
    response = client.get("/ok/")

    domain = [line for line in lines() if line["message"] == "transactions.flagged"]
    assert domain[0]["http.request.id"] == response["X-Request-ID"]
    assert domain[0]["anomaly.count"] == 2


def test_it_echoes_a_safe_request_id(client, lines):
    response = client.get("/ok/", HTTP_X_REQUEST_ID="edge-7f3a:42")

    assert response["X-Request-ID"] == "edge-7f3a:42"
    assert _request_lines(lines)[0]["http.request.id"] == "edge-7f3a:42"


@pytest.mark.parametrize(
    "unsafe",
    ["x" * 65, "with space", 'quote"d', "semi;colon", "{jndi:ldap}", "é"],
)
def test_it_replaces_an_unsafe_request_id(client, unsafe):
    response = client.get("/ok/", HTTP_X_REQUEST_ID=unsafe)

    request_id = response["X-Request-ID"]
    assert request_id != unsafe
    assert len(request_id) == 32 and int(request_id, 16) >= 0


def test_it_gives_each_request_its_own_id(client):
    first = client.get("/ok/")["X-Request-ID"]
    second = client.get("/ok/")["X-Request-ID"]
    assert first != second


def test_it_logs_a_server_error_with_its_traceback_and_request_id(client, lines):
    client.raise_request_exception = False

    response = client.get("/boom/")

    assert response.status_code == 500
    (request_line,) = _request_lines(lines)
    assert request_line["http.response.status_code"] == 500
    assert request_line["log.level"] == "error"
    assert request_line["event.outcome"] == "failure"
    (error_line,) = [line for line in lines() if line.get("error.type") == "RuntimeError"]
    assert error_line["http.request.id"] == response["X-Request-ID"]
    assert "scoring exploded" in error_line["error.stack_trace"]


def test_it_logs_a_client_error_as_a_warning(client, lines):
    client.get("/gone/")

    (line,) = _request_lines(lines)
    assert line["http.response.status_code"] == 404
    assert line["log.level"] == "warning"


def test_it_names_the_authenticated_user(client, user, lines):
    client.force_login(user)

    client.get("/user/")

    assert _request_lines(lines)[0]["user.id"] == str(user.pk)


def test_it_ignores_x_forwarded_for_without_a_trusted_proxy(client, settings, lines):
    settings.TRUSTED_PROXY_COUNT = 0

    client.get("/ok/", HTTP_X_FORWARDED_FOR="6.6.6.6")

    assert _request_lines(lines)[0]["client.ip"] == "127.0.0.1"


def test_it_takes_the_client_ip_from_the_trusted_proxy(client, settings, lines):
    settings.TRUSTED_PROXY_COUNT = 1

    # The client forged the first hop; Traefik appended the real address.
    client.get("/ok/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")

    assert _request_lines(lines)[0]["client.ip"] == "203.0.113.9"


def test_it_does_not_leak_the_request_id_into_later_lines(client, lines):
    client.get("/ok/")
    structlog.get_logger("detection").info("batch.finished")

    assert "http.request.id" not in lines()[-1]


def test_it_samples_process_metrics_at_most_every_few_seconds(rf, monkeypatch):
    log_request = middleware.RequestLogMiddleware(lambda request: HttpResponse("ok"))
    calls = []
    monkeypatch.setattr(middleware.metrics, "update_process_metrics", lambda: calls.append(1))
    clock = iter([1000.0, 1001.0, 1006.0])
    monkeypatch.setattr(middleware, "monotonic", lambda: next(clock))

    for _ in range(3):
        log_request(rf.get("/ok/"))

    assert len(calls) == 2  # at t=1000 and t=1006, not at t=1001
