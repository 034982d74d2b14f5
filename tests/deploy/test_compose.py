"""compose.yaml: valid against the Compose specification, and the promises
the deploy makes (what is routed, what is published, who shares a network,
where secrets come from) hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.deploy.conftest import DEPLOY, ROOT, load_yaml

SERVICES = {
    "app",
    "migrate",
    "postgres",
    "redis",
    "traefik",
    "prometheus",
    "alertmanager",
    "grafana",
    "elasticsearch",
    "kibana",
    "filebeat",
    "logrotate",
}
# Made on the server by an operator (docs/deploy.md), never committed.
GENERATED_SOURCES = ("./deploy/tls/certs/", "./secrets/")


def _labels(service: dict) -> dict[str, str]:
    return service.get("labels") or {}


def _routers(compose: dict) -> dict[str, dict[str, str]]:
    """router name -> its settings, for every router any service declares."""
    routers: dict[str, dict[str, str]] = {}
    for service in compose["services"].values():
        for key, value in _labels(service).items():
            match = re.fullmatch(r"traefik\.http\.routers\.([^.]+)\.(.+)", key)
            if match:
                routers.setdefault(match[1], {})[match[2]] = str(value)
    return routers


def _networks(service: dict) -> set[str]:
    networks = service.get("networks") or []
    return set(networks) if isinstance(networks, list) else set(networks.keys())


def test_it_follows_the_compose_specification():
    check_jsonschema = Path(sys.executable).parent / "check-jsonschema"

    result = subprocess.run(
        [str(check_jsonschema), "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_it_has_exactly_the_services_of_the_stack(compose):
    assert set(compose["services"]) == SERVICES


def test_it_publishes_only_traefiks_http_and_https_ports(compose):
    published = {
        name: service["ports"]
        for name, service in compose["services"].items()
        if "ports" in service
    }

    assert published == {"traefik": ["80:80", "443:443"]}


def test_it_can_scale_the_app(compose):
    app = compose["services"]["app"]

    assert "container_name" not in app  # a fixed name allows one container only
    assert "ports" not in app
    assert "replicas" in app["deploy"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert {"postgres", "redis"} <= set(app["depends_on"])
    # Every replica shares the same database, cache and artifacts.
    assert "@postgres:5432/" in app["environment"]["DATABASE_URL"]
    assert "@redis:6379/" in app["environment"]["REDIS_URL"]
    assert any(v.endswith(":/app/ml_artifacts") for v in app["volumes"])


def test_it_runs_migrations_once_as_a_one_off_job(compose):
    migrate = compose["services"]["migrate"]

    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["restart"] == "no"
    assert "deploy" not in migrate


def test_it_routes_only_the_app_grafana_and_kibana(compose):
    routed = {
        name
        for name, service in compose["services"].items()
        if _labels(service).get("traefik.enable") == "true"
    }

    assert routed == {"app", "grafana", "kibana"}
    assert set(_routers(compose)) == {"app", "grafana", "kibana"}


def test_it_never_routes_metrics_publicly(compose):
    routers = _routers(compose)

    assert "!PathPrefix(`/metrics`)" in routers["app"]["rule"]
    ports = {
        value
        for service in compose["services"].values()
        for key, value in _labels(service).items()
        if key.endswith("loadbalancer.server.port")
    }
    assert ports == {"8000", "3000", "5601"}  # not 9464 (metrics), 9090, 9093


def test_it_serves_every_router_over_https_with_a_rate_limit(compose):
    for name, router in _routers(compose).items():
        assert router["entrypoints"] == "websecure", name
        assert router["tls.certresolver"] == "letsencrypt", name
        assert "rate-limit-" in router["middlewares"], name


def test_it_buffers_whole_requests_in_front_of_the_apps_sync_workers(compose):
    middlewares = load_yaml(DEPLOY / "traefik" / "dynamic" / "middlewares.yml")["http"][
        "middlewares"
    ]

    assert "buffer-app@file" in _routers(compose)["app"]["middlewares"].split(",")
    buffering = middlewares["buffer-app"]["buffering"]
    # Smaller than the app's own limit would refuse bodies the app accepts.
    assert buffering["maxRequestBodyBytes"] >= settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    # Held in memory whole: a body on disk would cost a write per request.
    assert buffering["memRequestBodyBytes"] >= buffering["maxRequestBodyBytes"]


def test_it_puts_basic_auth_in_front_of_grafana(compose):
    middlewares = load_yaml(DEPLOY / "traefik" / "dynamic" / "middlewares.yml")["http"][
        "middlewares"
    ]

    assert "grafana-auth@file" in _routers(compose)["grafana"]["middlewares"]
    basic_auth = middlewares["grafana-auth"]["basicAuth"]
    assert basic_auth["usersFile"] == "/run/secrets/grafana_htpasswd"
    # Otherwise Grafana would read Traefik's credentials as its own login.
    assert basic_auth["removeHeader"] is True
    assert "grafana_htpasswd" in compose["services"]["traefik"]["secrets"]


def test_it_redirects_http_to_https_and_adds_security_headers(compose):
    command = compose["services"]["traefik"]["command"]
    middlewares = load_yaml(DEPLOY / "traefik" / "dynamic" / "middlewares.yml")["http"][
        "middlewares"
    ]

    assert "--entrypoints.web.http.redirections.entrypoint.to=websecure" in command
    assert "--entrypoints.web.http.redirections.entrypoint.scheme=https" in command
    assert "--entrypoints.websecure.http.middlewares=security-headers@file" in command
    headers = middlewares["security-headers"]["headers"]
    assert headers["stsSeconds"] >= 31536000
    assert headers["frameDeny"] and headers["contentTypeNosniff"]
    for name in ("rate-limit-app", "rate-limit-ui"):
        assert middlewares[name]["rateLimit"]["average"] > 0


def test_it_gets_certificates_from_acme_with_a_local_fallback(compose):
    traefik = compose["services"]["traefik"]
    tls = load_yaml(DEPLOY / "traefik" / "dynamic" / "tls.yml")["tls"]

    assert any("certificatesresolvers.letsencrypt.acme.storage=" in c for c in traefik["command"])
    assert "./deploy/tls/certs/local:/etc/traefik/certs:ro" in traefik["volumes"]
    fallback = tls["stores"]["default"]["defaultCertificate"]
    assert fallback == {
        "certFile": "/etc/traefik/certs/local.crt",
        "keyFile": "/etc/traefik/certs/local.key",
    }
    assert tls["options"]["default"]["minVersion"] == "VersionTLS12"


def test_it_isolates_the_networks(compose):
    services = compose["services"]
    networks = compose["networks"]

    assert networks["internal"]["internal"] is True
    assert networks["logging"]["internal"] is True
    for name in ("elasticsearch", "filebeat"):
        assert _networks(services[name]) == {"logging"}, name
    assert _networks(services["kibana"]) == {"logging", "proxy"}
    for name in ("postgres", "redis", "prometheus", "migrate"):
        assert _networks(services[name]) == {"internal"}, name
    assert _networks(services["app"]) == {"proxy", "internal"}
    assert "logging" not in _networks(services["app"])
    assert services["logrotate"]["network_mode"] == "none"
    # The Docker provider must pick the network Traefik itself is on.
    for service in services.values():
        if _labels(service).get("traefik.enable") == "true":
            assert _labels(service)["traefik.docker.network"] == networks["proxy"]["name"]


def test_it_mounts_only_files_that_exist_or_that_the_docs_generate(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith("./") or source.startswith(GENERATED_SOURCES):
                continue
            assert (ROOT / source).exists(), f"{name}: {source} does not exist"
    for secret in compose["secrets"].values():
        assert secret["file"].startswith(GENERATED_SOURCES)


def test_it_mounts_the_certificate_folders_make_certs_creates(compose, certs):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./deploy/tls/certs/"):
                folder = certs / source.removeprefix("./deploy/tls/certs/")
                assert folder.is_dir(), f"{name}: {source}"
                assert not list(folder.glob("ca.key")), f"{name} would see the CA key"


def test_it_takes_every_secret_from_the_environment(compose):
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if re.search(r"PASSWORD|SECRET|_KEY$|_AUTH$", key):
                assert "${" in str(value), f"{name}: {key} is a literal"


def _compose_variables() -> set[str]:
    text = (ROOT / "compose.yaml").read_text()
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))


def test_it_documents_every_variable_in_env_example(env_example):
    assert _compose_variables() - set(env_example) == set(), "not in .env.example"
    assert set(env_example) - _compose_variables() == set(), "documented but unused"


def test_it_ships_no_real_secret_in_env_example(env_example):
    for name, value in env_example.items():
        if re.search(r"PASSWORD|SECRET|ENCRYPTION_KEY", name):
            assert value.startswith("change-me"), name


def _variables_read_by(path: Path) -> set[str]:
    return set(re.findall(r"env\.\w+\(\s*[\"']([A-Z_][A-Z0-9_]*)[\"']", path.read_text()))


# Read by the application but deliberately not settable through compose.
NOT_FOR_PRODUCTION = {
    "DJANGO_DEBUG",  # never in production
    "DJANGO_SECURE_SSL_REDIRECT",  # Traefik redirects; keep Django's default
    "HOST",  # gunicorn must listen on every interface in the container
    "METRICS_HOST",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_KEEPALIVE",
    "SQLITE_CHECKPOINT_SECONDS",  # the stack runs PostgreSQL
}


@pytest.mark.parametrize(
    "module", ["anomaly/settings.py", "anomaly/gunicorn_conf.py"], ids=lambda m: m
)
def test_it_passes_every_setting_the_app_reads(compose, module):
    environment = set(compose["services"]["app"]["environment"])
    dockerfile = set(
        re.findall(r"^\s*([A-Z_][A-Z0-9_]*)=", (ROOT / "Dockerfile").read_text(), re.M)
    )

    missing = _variables_read_by(ROOT / module) - environment - dockerfile - NOT_FOR_PRODUCTION

    # A new setting: pass it in compose.yaml (x-app environment, as
    # NAME: ${NAME:-}) and document it in .env.example, or list it above.
    assert missing == set()
