"""One error shape for every API answer that is not a success.

``{"error": code, "detail": sentence, "errors": [{"field", "message", "index"?}]}``
— ``errors`` only when input was refused, one entry per bad value, with the
item's position when the input was a batch. The exception handler turns
DRF's, Django's and our own exceptions into it, and anything unexpected into
a logged JSON 500 instead of an HTML page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.urls import Resolver404, resolve
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback
from rest_framework.views import exception_handler as drf_exception_handler

from detection.schema import FieldError

log = structlog.get_logger("detection.api")


class InvalidInput(exceptions.APIException):
    """Input refused: ``errors`` names each field, and the item for a batch."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_input"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        super().__init__(
            detail or f"{count} invalid value{'s' if count != 1 else ''}; nothing was stored"
        )


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "the request body is too large"


class ServiceUnavailable(exceptions.APIException):
    """A model cannot be used: no active version, or its artifact failed
    verification. ``extra`` says which and why, for the operator."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "model_unavailable"

    def __init__(self, detail: str, **extra: Any) -> None:
        self.extra = extra
        super().__init__(detail)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"

    def __init__(self, detail: str, **extra: Any) -> None:
        self.extra = extra
        super().__init__(detail)


def _flatten(detail: Any, prefix: str = "") -> Iterable[FieldError]:
    """DRF's nested ``{"field": ["message"]}`` detail as flat FieldErrors."""
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = "__all__" if key in ("non_field_errors", "detail") else str(key)
            yield from _flatten(value, f"{prefix}.{name}" if prefix else name)
    elif isinstance(detail, list):
        for item in detail:
            yield from _flatten(item, prefix)
    else:
        yield FieldError(prefix or "__all__", str(detail))


def _code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def _body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, InvalidInput):
        return {
            "error": exc.default_code,
            "detail": str(exc.detail),
            "errors": [e.as_dict() for e in exc.errors],
        }
    if isinstance(exc, exceptions.ValidationError):
        errors = list(_flatten(exc.detail))
        return {
            "error": "invalid_input",
            "detail": f"{len(errors)} invalid value{'s' if len(errors) != 1 else ''}",
            "errors": [e.as_dict() for e in errors],
        }
    body: dict[str, Any] = {"error": _code(exc), "detail": str(exc.detail)}
    body.update(getattr(exc, "extra", {}))
    return body


class DatabaseUnavailable(exceptions.APIException):
    """The database cannot be reached (down, restarting, failing over): a retry
    shortly may succeed, so 503 rather than 500."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "database_unavailable"
    default_detail = "the database is unreachable; retry in a few seconds"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, OperationalError | InterfaceError):
        log.error("api.database_unavailable", error_type=type(exc).__name__, error=str(exc))
        exc = DatabaseUnavailable()
    response = drf_exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        log.error(
            "api.unhandled_error",
            view=type(view).__name__ if view is not None else None,
            exc_info=exc,
        )
        set_rollback()
        return Response(
            {"error": "server_error", "detail": "unexpected error; it has been logged"},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    assert isinstance(exc, exceptions.APIException)
    response.data = _body(exc)
    if isinstance(exc, DatabaseUnavailable):
        response["Retry-After"] = "5"
    return response


# --- OpenAPI description of the error shape --------------------------------


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="the field's name, or __all__ for the whole item")
    message = serializers.CharField()
    index = serializers.IntegerField(
        required=False, help_text="position of the item in the submitted list"
    )


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="a stable code, e.g. invalid_input, not_found")
    detail = serializers.CharField(help_text="what went wrong, in words")
    errors = FieldErrorSerializer(many=True, required=False)


class ModelUnavailableSerializer(ErrorSerializer):
    algorithm = serializers.CharField()
    reason = serializers.CharField(
        help_text="no_active_version, or why the artifact failed verification: "
        "missing, tampered, truncated, incompatible"
    )
    model_version = serializers.IntegerField(required=False, allow_null=True)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error statuses an operation can answer with."""
    described = {
        400: "Invalid input: each bad value is named in `errors`",
        401: "Not authenticated",
        403: "Not allowed for this user",
        404: "Not found",
        409: "The request conflicts with the resource's state",
        413: "Request body too large",
        415: "Unsupported media type: send application/json",
        429: "Too many requests; see the Retry-After header",
        503: "A model has no active version or its artifact failed verification",
    }
    return {
        code: OpenApiResponse(
            ModelUnavailableSerializer if code == 503 else ErrorSerializer, described[code]
        )
        for code in codes
    }


class UnknownPathView(APIView):
    """Any other path under /api/: a JSON 404 like the rest of the API,
    rather than the site's HTML error page."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    schema = None

    def get_exception_handler(self) -> Any:
        return exception_handler

    def http_method_not_allowed(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        path = request.path[:100]
        detail = f"no API operation at {path}"
        if not path.endswith("/"):
            try:
                match = resolve(f"{path}/")
            except Resolver404:
                match = None
            if match is not None and match.func.view_class is not UnknownPathView:
                detail += f"; did you mean {path}/ ?"
        raise exceptions.NotFound(detail)
