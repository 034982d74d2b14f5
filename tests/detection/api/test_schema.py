"""The OpenAPI schema: valid without warnings, served with offline viewers,
and true to the API (schemathesis fuzzes every operation in-process)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.django_db

PATHS = {
    "/api/health/",
    "/api/ready/",
    "/api/models/",
    "/api/models/{id}/",
    "/api/models/{id}/activate/",
    "/api/models/{algorithm}/predict/",
    "/api/predict/",
    "/api/transactions/",
    "/api/transactions/{transaction_id}/",
    "/api/transactions/{transaction_id}/review/",
    "/api/accounts/{account_id}/transactions/",
}


def test_it_generates_a_valid_schema_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)


def test_it_serves_the_schema_with_every_operation(user_client):
    response = user_client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == PATHS
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}


def _urls(html: str) -> Iterable[str]:
    yield from re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    yield from re.findall(r"""url\(\s*["']?([^"')]+)""", html)
    yield from re.findall(r"""["'](https?:)?//[^"']+["']""", html)


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_it_serves_viewers_that_load_nothing_from_outside(user_client, page):
    response = user_client.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    urls = list(_urls(html))
    assert any("/static/drf_spectacular_sidecar/" in url for url in urls)
    assert not [url for url in urls if re.match(r"^(https?:)?//", url)], urls
    assert "cdn" not in html.lower()


# --- schemathesis: every operation, fuzzed in-process ------------------------


def _in_test_transaction(application: WSGIHandler):
    """The WSGI app, minus the per-request connection closing that would end
    the test's database transaction (what Django's test client does too)."""

    def app(environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = application(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

    return app


@pytest.fixture
def staff_token(staff) -> str:
    return Token.objects.create(user=staff).key


def _schema() -> dict:
    # Built in-process (what /api/schema/ serves), so loading needs no user.
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


# The coverage phase sends each field's boundary and edge values (every case
# the schema defines); the fuzzing phase adds a few random examples on top.
# Methods an operation does not have are checked once elsewhere (405/404).
schema = schemathesis.openapi.from_dict(
    _schema(),
    config=SchemathesisConfig.from_dict({"phases": {"coverage": {"unexpected-methods": []}}}),
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_it_answers_as_its_schema_says(case, trained, staff_token):
    response = case.call(
        app=_in_test_transaction(WSGIHandler()),
        headers={"Authorization": f"Token {staff_token}"},
    )

    case.validate_response(response, checks=CHECKS)
