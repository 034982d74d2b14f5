"""Production switches (``DJANGO_ENV=production``) and the Content Security
Policy.

Settings are read once per process, so what only production turns on is
observed in a fresh interpreter started with a production environment: one
runs Django's deployment checks, another drives the test client over HTTP and
HTTPS and reports what it saw. The policy itself is on in every environment
and is tested here in-process, then in a real browser on the pages that need
an exception (Swagger UI and Redoc).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections

from anomaly.csp import inline_script_hashes

BASE_DIR = django_settings.BASE_DIR
HOST = "example.com"

# Runs under the production settings; writes what it observed as JSON.
_PROBE = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.finders import get_finders
from django.core.management import call_command
from django.test import Client

# Production serves hashed static names from collectstatic's manifest. Real
# collectstatic compresses megabytes of bundles; these checks are about
# headers, so every file is listed under its own name instead.
paths = {path: path for finder in get_finders() for path, _ in finder.list([])}
settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)
(settings.STATIC_ROOT / "staticfiles.json").write_text(
    json.dumps({"paths": paths, "version": "1.1", "hash": ""})
)
call_command("migrate", verbosity=0)
get_user_model().objects.create_user("probe", password="probe-pass-123")

def seen(response):
    return {
        "status": response.status_code,
        "location": response.get("Location"),
        "hsts": response.get("Strict-Transport-Security"),
        "csp": response.get("Content-Security-Policy"),
        "cookies": {
            name: {"secure": bool(m["secure"]), "httponly": bool(m["httponly"])}
            for name, m in response.cookies.items()
        },
    }

client = Client(HTTP_HOST="example.com")
out = {"plain": {}, "proxied": {}}
for path in ["/", "/login/", "/api/predict/", "/api/health/", "/api/ready/", "/metrics"]:
    out["plain"][path] = seen(client.get(path, secure=False))
https = {"X-Forwarded-Proto": "https"}
out["proxied"]["/login/"] = seen(client.get("/login/", headers=https))
out["proxied"]["login"] = seen(
    client.post("/login/", {"username": "probe", "password": "probe-pass-123"}, headers=https)
)
# A browser behind Traefik: the CSRF check runs, over HTTPS as the proxy says.
browser = Client(HTTP_HOST="example.com", enforce_csrf_checks=True)
form = browser.get("/login/", headers=https)
out["proxied"]["csrf_login"] = seen(
    browser.post(
        "/login/",
        {
            "username": "probe",
            "password": "probe-pass-123",
            "csrfmiddlewaretoken": form.cookies["csrftoken"].value,
        },
        headers={**https, "Origin": "https://example.com", "Referer": "https://example.com/login/"},
    )
)
with open(sys.argv[1], "w") as handle:
    json.dump(out, handle)
"""


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(BASE_DIR),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "anomaly.settings",
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DATABASE_URL": "sqlite://:memory:",
        "LOG_DIR": str(tmp_path / "log"),
        "ML_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "STATIC_ROOT": str(tmp_path / "static"),
        **extra,
    }


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict[str, Any]:
    """What the test client saw from the production settings."""
    tmp_path = tmp_path_factory.mktemp("production")
    result_file = tmp_path / "seen.json"
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(result_file)],
        cwd=BASE_DIR,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result_file.read_text())


def test_it_passes_the_deployment_checks_in_production(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("path", ["/", "/login/", "/api/predict/"])
def test_it_redirects_plain_http_to_https_in_production(production, path):
    seen = production["plain"][path]

    assert seen["status"] == 301
    assert seen["location"] == f"https://{HOST}{path}"


@pytest.mark.parametrize(
    ("path", "status"), [("/api/health/", 200), ("/api/ready/", 503), ("/metrics", 200)]
)
def test_it_answers_the_probes_and_metrics_over_plain_http(production, path, status):
    # The container health check and Prometheus talk plain HTTP internally;
    # /api/ready/ says 503 here only because this database has no model.
    seen = production["plain"][path]

    assert seen["status"] == status
    assert seen["location"] is None


def test_it_trusts_the_proxys_https_header_and_sends_hsts(production):
    seen = production["proxied"]["/login/"]

    assert seen["status"] == 200
    assert seen["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert directives(seen["csp"])["frame-ancestors"] == ["'none'"]


def test_it_signs_in_through_the_proxy_with_the_csrf_check_on(production):
    seen = production["proxied"]["csrf_login"]

    assert seen["status"] == 302
    assert seen["location"] == "/"


def test_it_sets_only_secure_cookies_in_production(production):
    form = production["proxied"]["/login/"]["cookies"]
    signed_in = production["proxied"]["login"]

    assert signed_in["status"] == 302, "the probe user could not sign in"
    assert form["csrftoken"]["secure"] is True
    assert signed_in["cookies"]["sessionid"] == {"secure": True, "httponly": True}
    assert signed_in["cookies"]["csrftoken"]["secure"] is True


# --- Content Security Policy (every environment) ---------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/", "/models/", "/transactions/"])
def test_it_sends_a_strict_content_security_policy_on_pages(client, user, path):
    if path != "/login/":
        client.force_login(user)

    response = client.get(path)

    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]


@pytest.mark.django_db
def test_it_sends_the_policy_on_api_answers_too(client):
    response = client.get("/api/health/")

    assert directives(response["Content-Security-Policy"])["script-src"] == ["'self'"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_it_allows_inline_scripts_on_the_docs_by_their_hash_only(client, user, path):
    client.force_login(user)

    response = client.get(path)

    assert response.status_code == 200
    hashes = inline_script_hashes(response.content)
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'", *hashes]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_it_does_not_relax_the_policy_for_the_schema_itself(client, user):
    client.force_login(user)

    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"])["style-src"] == ["'self'"]


# --- in a real browser -------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("Chromium is not installed (.ci/install-tools installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the database
    # calls the tests make here are still plain synchronous ones.
    with pytest.MonkeyPatch.context() as patch, sync_api.sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=executable)
        try:
            yield browser
        finally:
            browser.close()
            # The tests' database calls inside this block had connections of
            # their own (see tests/dashboard/test_browser.py): close them.
            connections.close_all()


@pytest.fixture
def browser_page(chromium, live_server, client, user):
    """A signed-in page that records every CSP violation the browser reports."""
    client.force_login(user)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    context = chromium.new_context()
    context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    page = context.new_page()
    page.violations = []
    page.on(
        "console",
        lambda message: (
            page.violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    try:
        yield page
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_renders_swagger_ui_under_the_policy(browser_page, live_server):
    browser_page.goto(f"{live_server.url}/api/docs/")

    browser_page.locator(".opblock-summary-path", has_text="/api/predict/").first.wait_for(
        timeout=20_000
    )
    assert browser_page.violations == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_renders_redoc_under_the_policy(browser_page, live_server):
    browser_page.goto(f"{live_server.url}/api/redoc/")

    browser_page.get_by_text("/api/predict/").first.wait_for(state="attached", timeout=20_000)
    # Redoc's "API docs by Redocly" logo is fetched from Redocly's CDN: the
    # policy blocking it is what keeps the page offline. Nothing else may be.
    blocked = [v for v in browser_page.violations if "https://cdn.redoc.ly/" not in v]
    assert blocked == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_renders_the_pages_without_policy_violations(browser_page, live_server):
    for path in ["/", "/predict/", "/transactions/", "/models/"]:
        browser_page.goto(f"{live_server.url}{path}")
        browser_page.wait_for_load_state("load")

    assert browser_page.violations == []
