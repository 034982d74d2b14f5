"""Request rate limits, counted in the shared cache (Redis when REDIS_URL is
set, so every worker and instance counts together).

DRF's own rate throttles keep a list of every request time in the window and
rewrite it on each request: at the rates the scoring API is built for
(thousands a minute per client) that list costs more than the request. A
fixed window costs one counter increment. Rates are read from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` on each request, not frozen at
import, so settings overrides take effect.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"120/minute"`` → (120, 60)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0]]


class _WindowThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def ident(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        ident = self.ident(request)
        if rate is None or ident is None:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = f"throttle:{self.scope}:{ident}:{window}"
        # add() is a no-op when the counter exists; incr() is atomic in Redis.
        cache.add(key, 0, period + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, period + 1)
            count = 1
        if count > limit:
            self._wait = (window + 1) * period - now
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


class UserRateThrottle(_WindowThrottle):
    scope = "user"

    def ident(self, request: Request) -> str | None:
        return str(request.user.pk) if request.user and request.user.is_authenticated else None


class AnonRateThrottle(_WindowThrottle):
    scope = "anon"

    def ident(self, request: Request) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.get_ident(request)
