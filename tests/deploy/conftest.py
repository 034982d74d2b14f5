"""Shared helpers for the deploy checks: the repository's files and the
command-line tools from Debian packages (.ci/install-tools installs them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from anomaly.env import env

ROOT: Path = settings.BASE_DIR
DEPLOY = ROOT / "deploy"


def require_tool(name: str) -> str:
    """The tool's path. Missing: a failure in CI (CI set), a skip elsewhere."""
    path = shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")
    if path:
        return path
    message = f"{name} is not installed (run .ci/install-tools as root)"
    if env.bool("CI", default=False):
        pytest.fail(message)
    pytest.skip(message)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return load_yaml(ROOT / "compose.yaml")


@pytest.fixture(scope="session")
def env_example() -> dict[str, str]:
    """The variables of .env.example with their example values."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip().strip("'\"")
    return values


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Path:
    """What deploy/tls/make-certs.sh makes, in a temporary folder."""
    require_tool("openssl")
    out = tmp_path_factory.mktemp("tls") / "certs"
    subprocess.run(
        ["bash", str(DEPLOY / "tls" / "make-certs.sh"), str(out)],
        check=True,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "ENV_FILE": "/nonexistent",
            "APP_DOMAIN": "anomaly.test",
            "CA_BITS": "2048",  # the key size is not what is tested; speed is welcome
        },
    )
    return out
