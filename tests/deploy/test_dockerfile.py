"""The application image: how it is built and run. There is no Docker engine on
the build machine, so the steps the image runs are run here directly."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from django.conf import settings

from tests.deploy.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _final_stage() -> str:
    return DOCKERFILE.rsplit("\nFROM ", 1)[1]


def test_it_builds_in_stages_from_the_lock():
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.MULTILINE)) >= 3
    assert "uv sync --frozen --no-dev" in DOCKERFILE
    assert "uv.lock" in DOCKERFILE
    assert "uv" not in re.sub(r"uv\.lock|\buv_", "", _final_stage()).split()  # no uv at runtime


def test_it_runs_as_an_unprivileged_user():
    users = re.findall(r"^USER (\S+)", _final_stage(), re.MULTILINE)

    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_it_starts_gunicorn_with_the_projects_config():
    (command,) = re.findall(r"^CMD (.+)$", _final_stage(), re.MULTILINE)

    assert json.loads(command) == [
        "gunicorn",
        "--config",
        "anomaly/gunicorn_conf.py",
        "anomaly.wsgi",
    ]


def test_it_checks_health_with_a_script_that_is_in_the_image():
    instruction = re.search(r"^HEALTHCHECK .*?CMD (\[.+?\])$", DOCKERFILE, re.MULTILINE | re.DOTALL)
    script = json.loads(instruction[1])[1]

    assert script == "deploy/app/healthcheck.py"
    assert (ROOT / script).is_file()
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!deploy/app" in dockerignore  # re-included after deploy/* is excluded


def test_it_keeps_secrets_and_local_state_out_of_the_build_context():
    ignored = set((ROOT / ".dockerignore").read_text().splitlines())

    assert {".env", ".git", ".venv", "var", "secrets", "staticfiles"} <= ignored


def test_it_collects_static_files_with_the_production_settings(tmp_path):
    # The image's collectstatic step, with its environment. The manifest
    # storage is what fails a build when a stylesheet refers to a missing
    # file; whitenoise's subclass only adds compression, which takes minutes
    # on a small machine, so the test runs the plain manifest storage.
    from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
    from django.utils.module_loading import import_string

    production_storage = "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert production_storage in (ROOT / "anomaly" / "settings.py").read_text()
    assert issubclass(import_string(production_storage), ManifestStaticFilesStorage)
    (tmp_path / "collect_settings.py").write_text(
        "from anomaly.settings import *\n"
        "STORAGES = {**STORAGES, 'staticfiles': {'BACKEND': "
        "'django.contrib.staticfiles.storage.ManifestStaticFilesStorage'}}\n"
    )
    static_root = tmp_path / "staticfiles"
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": f"{tmp_path}:{settings.BASE_DIR}",
        "DJANGO_SETTINGS_MODULE": "collect_settings",
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": "collectstatic-only-not-a-secret",
        "STATIC_ROOT": str(static_root),
        "LOG_DIR": str(tmp_path / "log"),
    }
    assert "manage.py collectstatic --noinput" in DOCKERFILE

    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=settings.BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    manifest = json.loads((static_root / "staticfiles.json").read_text())
    # Swagger UI and Redoc are served from the image, not from a CDN.
    assert any(path.startswith("drf_spectacular_sidecar/") for path in manifest["paths"])
