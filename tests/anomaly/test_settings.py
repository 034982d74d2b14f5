"""Settings are read once, at import, from the environment.

Each test imports ``anomaly.settings`` in a fresh interpreter with an
environment built from scratch, so neither the test run's own variables (its
DATABASE_URL, for one) nor earlier imports leak in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings as django_settings

BASE_DIR = django_settings.BASE_DIR

_PRINT_SETTINGS = """
import json, sys
import anomaly.settings as s
print(json.dumps({name: getattr(s, name, None) for name in sys.argv[1:]}, default=str))
"""


def _import_settings(
    tmp_path, env: dict[str, str], *names: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(BASE_DIR),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LOG_DIR": str(tmp_path / "log"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", _PRINT_SETTINGS, *names],
        cwd=BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _settings(tmp_path, env: dict[str, str], *names: str) -> dict[str, Any]:
    result = _import_settings(tmp_path, {"DJANGO_SECRET_KEY": "k" * 50, **env}, *names)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("secret", [None, "", "   "])
def test_it_refuses_to_start_in_production_without_a_secret_key(tmp_path, secret):
    env = {"DJANGO_ENV": "production"}
    if secret is not None:
        env["DJANGO_SECRET_KEY"] = secret

    result = _import_settings(tmp_path, env, "SECRET_KEY")

    assert result.returncode != 0
    assert result.stdout == ""
    assert "DJANGO_SECRET_KEY must be set when DJANGO_ENV=production" in result.stderr


def test_it_uses_the_given_secret_key_in_production(tmp_path):
    values = _settings(
        tmp_path, {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "s3cret"}, "SECRET_KEY"
    )

    assert values["SECRET_KEY"] == "s3cret"


def test_it_switches_on_the_secure_defaults_in_production(tmp_path):
    values = _settings(
        tmp_path,
        {"DJANGO_ENV": "production"},
        "PRODUCTION",
        "DEBUG",
        "ALLOWED_HOSTS",
        "SECURE_SSL_REDIRECT",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_CONTENT_TYPE_NOSNIFF",
        "X_FRAME_OPTIONS",
        "STORAGES",
    )

    assert values["PRODUCTION"] is True
    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == []
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["STORAGES"]["staticfiles"]["BACKEND"] == (
        "whitenoise.storage.CompressedManifestStaticFilesStorage"
    )


def test_it_keeps_the_secure_switches_off_outside_production(tmp_path):
    values = _settings(
        tmp_path,
        {},
        "PRODUCTION",
        "DEBUG",
        "ALLOWED_HOSTS",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
    )

    assert values["PRODUCTION"] is False
    assert values["DEBUG"] is False
    assert "localhost" in values["ALLOWED_HOSTS"]
    assert "127.0.0.1" in values["ALLOWED_HOSTS"]
    assert values["SECURE_SSL_REDIRECT"] is None
    assert values["SESSION_COOKIE_SECURE"] is None


def test_it_lets_production_hosts_and_redirect_be_configured(tmp_path):
    values = _settings(
        tmp_path,
        {
            "DJANGO_ENV": "production",
            "DJANGO_ALLOWED_HOSTS": "anomaly.example, api.anomaly.example",
            "DJANGO_CSRF_TRUSTED_ORIGINS": "https://anomaly.example",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_HSTS_SECONDS": "0",
        },
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
    )

    assert values["ALLOWED_HOSTS"] == ["anomaly.example", "api.anomaly.example"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://anomaly.example"]
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DJANGO_ENV", "staging"),
        ("DJANGO_DEBUG", "maybe"),
        ("ML_CONTAMINATION", "0.9"),
        ("AXES_FAILURE_LIMIT", "0"),
        ("API_MAX_BATCH", "many"),
        ("LOG_LEVEL", "VERBOSE"),
    ],
)
def test_it_refuses_to_start_with_a_bad_value_and_names_the_variable(tmp_path, name, value):
    result = _import_settings(tmp_path, {"DJANGO_SECRET_KEY": "k" * 50, name: value}, "DEBUG")

    assert result.returncode != 0
    assert f"EnvError: {name}=" in result.stderr


def test_it_defaults_to_an_sqlite_file_under_var(tmp_path):
    database = _settings(tmp_path, {}, "DATABASES")["DATABASES"]["default"]

    assert database["ENGINE"] == "anomaly.db.sqlite3"
    assert database["NAME"] == str(BASE_DIR / "var" / "anomaly.sqlite3")
    # Writers queue for the lock instead of failing halfway through.
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]


def test_it_reads_an_sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.sqlite3'}"

    database = _settings(tmp_path, {"DATABASE_URL": url}, "DATABASES")["DATABASES"]["default"]

    assert database["ENGINE"] == "anomaly.db.sqlite3"
    assert database["NAME"] == str(tmp_path / "other.sqlite3")


def test_it_reads_a_postgres_url(tmp_path):
    url = "postgres://anomaly:pa%40ss@db.example:6543/transactions?sslmode=require"

    database = _settings(tmp_path, {"DATABASE_URL": url}, "DATABASES")["DATABASES"]["default"]

    assert database["ENGINE"] == "anomaly.db.postgresql"
    assert database["NAME"] == "transactions"
    assert database["USER"] == "anomaly"
    assert database["PASSWORD"] == "pa@ss"
    assert database["HOST"] == "db.example"
    assert database["PORT"] == 6543
    assert database["OPTIONS"] == {"sslmode": "require"}
    assert database["CONN_MAX_AGE"] == 600
    assert database["CONN_HEALTH_CHECKS"] is True


def test_it_uses_a_per_process_cache_without_redis(tmp_path):
    cache = _settings(tmp_path, {}, "CACHES")["CACHES"]["default"]

    assert cache["BACKEND"] == "django_prometheus.cache.backends.locmem.LocMemCache"


def test_it_switches_the_cache_to_redis_when_redis_url_is_set(tmp_path):
    cache = _settings(tmp_path, {"REDIS_URL": "redis://cache.example:6379/2"}, "CACHES")["CACHES"][
        "default"
    ]

    assert cache["BACKEND"] == "django_prometheus.cache.backends.redis.RedisCache"
    assert cache["LOCATION"] == "redis://cache.example:6379/2"
    assert cache["KEY_PREFIX"] == "anomaly"


def test_it_reads_the_artifacts_and_log_folders(tmp_path):
    values = _settings(
        tmp_path,
        {"ML_ARTIFACTS_DIR": str(tmp_path / "models"), "LOG_DIR": str(tmp_path / "logs")},
        "ML_ARTIFACTS_DIR",
        "LOG_DIR",
    )

    assert values["ML_ARTIFACTS_DIR"] == str(tmp_path / "models")
    assert values["LOG_DIR"] == str(tmp_path / "logs")


def test_it_defaults_the_artifacts_folder_to_the_project(tmp_path):
    values = _settings(tmp_path, {}, "ML_ARTIFACTS_DIR")

    assert values["ML_ARTIFACTS_DIR"] == str(BASE_DIR / "ml_artifacts")
