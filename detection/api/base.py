"""The policies every API view shares: JSON only in, the project's error
shape out, the shared-cache throttles, authenticated by default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.views import APIView

from detection.api.errors import exception_handler
from detection.api.parsers import JSONParser, JSONRenderer
from detection.api.throttling import AnonRateThrottle, UserRateThrottle


class ApiPolicies:
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    permission_classes = [IsAuthenticated]
    throttle_classes = [AnonRateThrottle, UserRateThrottle]

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Any]:
        return exception_handler


class ApiView(ApiPolicies, APIView):
    pass


class ApiListView(ApiPolicies, GenericAPIView):
    pass
