"""One log line per request, a request id end to end, process gauges."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from time import monotonic, perf_counter_ns

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

from detection import metrics

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and a few separators: enough for uuids, trace ids and the
# ids of common proxies, and nothing that could forge a log line or a header.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@+=-]{1,64}")
PROCESS_METRICS_INTERVAL_SECONDS = 5.0

log = structlog.get_logger("anomaly.request")


class RequestLogMiddleware:
    """Sits right after django-prometheus's first middleware, so the duration it
    logs covers every other middleware and the view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._next_process_sample = 0.0
        # Runs once per process when Django loads the middleware chain.
        metrics.initialize_metrics()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = perf_counter_ns()
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**{"http.request.id": request_id})
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            self._log(request, response, perf_counter_ns() - started)
            self._sample_process()
            return response
        finally:
            structlog.contextvars.clear_contextvars()

    def _log(self, request: HttpRequest, response: HttpResponse, duration_ns: int) -> None:
        status = response.status_code
        fields: dict[str, object] = {
            "event.action": "http.request",
            "event.kind": "event",
            "event.category": ["web"],
            "event.type": ["access"],
            "event.outcome": "failure" if status >= 400 else "success",
            "event.duration": duration_ns,
            "http.request.method": request.method,
            "url.path": request.path,
            "http.response.status_code": status,
            "client.ip": client_ip(request),
        }
        user_id = _user_id(request)
        if user_id is not None:
            fields["user.id"] = user_id
        user_agent = request.headers.get("User-Agent")
        if user_agent:
            fields["user_agent.original"] = user_agent[:512]
        if not response.streaming:
            fields["http.response.body.bytes"] = len(response.content)
        level = "error" if status >= 500 else "warning" if status >= 400 else "info"
        getattr(log, level)(f"{request.method} {request.path} {status}", **fields)

    def _sample_process(self) -> None:
        # psutil costs a few microseconds; once every few seconds is plenty
        # for a gauge Prometheus reads every 15 s.
        now = monotonic()
        if now >= self._next_process_sample:
            self._next_process_sample = now + PROCESS_METRICS_INTERVAL_SECONDS
            metrics.update_process_metrics()


def request_id_from(value: str | None) -> str:
    """The client's request id when it is safe to echo, else a new one."""
    if value and _SAFE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, trusting X-Forwarded-For only as far as the
    configured number of proxies (Traefik in production) reaches."""
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = _trusted_proxy_count()
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote
    # Each trusted proxy appended one address; the one it received the
    # request from is the last it appended.
    return hops[-min(proxies, len(hops))]


def _trusted_proxy_count() -> int:
    count = getattr(settings, "TRUSTED_PROXY_COUNT", None)
    if count is None:
        count = getattr(settings, "REST_FRAMEWORK", {}).get("NUM_PROXIES") or 0
    return int(count)


def _user_id(request: HttpRequest) -> str | None:
    user = request.__dict__.get("user")
    if user is None:
        return None
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        # Nothing looked at the user during the request; resolving it now
        # would cost a session lookup just to write a log line.
        return None
    if not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)
