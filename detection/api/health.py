"""Liveness and readiness probes: no authentication, no throttling, so an
orchestrator or load balancer can poll them freely."""

from __future__ import annotations

from typing import Any

import structlog
from django.db import DatabaseError, connection
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from detection.api.base import ApiView
from detection.models import Algorithm
from detection.registry import ArtifactError, NoActiveModel, active_detectors

log = structlog.get_logger("detection.api")


class HealthView(ApiView):
    """Liveness: the process answers. It touches nothing else on purpose."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        operation_id="health",
        auth=[],
        responses=inline_serializer("Health", {"status": serializers.CharField()}),
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class CheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()
    model_version = serializers.IntegerField(required=False, allow_null=True)
    reason = serializers.CharField(required=False)


class ReadySerializer(serializers.Serializer):
    status = serializers.CharField(help_text="ready or unavailable")
    checks = serializers.DictField(child=CheckSerializer())
    problems = serializers.ListField(child=serializers.CharField())


def _database_check() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        log.error("ready.database_unreachable", error_type=type(exc).__name__, error=str(exc))
        return {"ok": False, "detail": f"database unreachable ({type(exc).__name__})"}
    return {"ok": True, "detail": "reachable"}


def _model_check(algorithm: str) -> dict[str, Any]:
    try:
        detector = active_detectors((algorithm,))[algorithm]
    except NoActiveModel:
        return {"ok": False, "detail": "no active version", "reason": "no_active_version"}
    except ArtifactError as exc:
        version = exc.model_version.version if exc.model_version is not None else None
        return {
            "ok": False,
            "detail": f"artifact of version {version} fails verification: {exc.detail}",
            "reason": exc.reason,
            "model_version": version,
        }
    return {"ok": True, "detail": "loaded", "model_version": detector.version}


def readiness() -> dict[str, Any]:
    checks = {"database": _database_check()}
    for algorithm in Algorithm.values:
        checks[algorithm] = (
            _model_check(algorithm)
            if checks["database"]["ok"]
            else {"ok": False, "detail": "not checked: the database is unreachable"}
        )
    problems = [f"{name}: {check['detail']}" for name, check in checks.items() if not check["ok"]]
    return {
        "status": "unavailable" if problems else "ready",
        "checks": checks,
        "problems": problems,
    }


class ReadyView(ApiView):
    """Readiness: the database answers and each model has an active version
    whose artifact verifies and loads."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        operation_id="ready",
        auth=[],
        responses={
            200: ReadySerializer,
            503: OpenApiResponse(ReadySerializer, "Not ready: `problems` names what is missing"),
        },
    )
    def get(self, request: Request) -> Response:
        report = readiness()
        return Response(report, status=200 if report["status"] == "ready" else 503)
