"""Alertmanager: the template renders from the environment (as the container
entry point does), the result is a valid config, and alerts are routed by
severity."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, require_tool

TEMPLATE = DEPLOY / "alertmanager" / "alertmanager.yml"
RENDER = DEPLOY / "alertmanager" / "render-config.sh"


def _variables() -> set[str]:
    return {
        name
        for line in TEMPLATE.read_text().splitlines()
        if not line.lstrip().startswith("#")
        for name in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", line)
    }


def _render(
    tmp_path: Path, environ: dict[str, str], shell: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    output = tmp_path / "alertmanager.yml"
    return subprocess.run(
        [*(shell or ["sh"]), str(RENDER), str(TEMPLATE), str(output)],
        env={"PATH": "/usr/bin:/bin", "RENDER_ONLY": "1", **environ},
        capture_output=True,
        text=True,
    )


@pytest.fixture
def rendered(tmp_path, env_example) -> Path:
    environ = {name: env_example[name] for name in _variables()}
    result = _render(tmp_path, environ)
    assert result.returncode == 0, result.stderr
    return tmp_path / "alertmanager.yml"


def test_it_renders_a_config_amtool_accepts(rendered):
    amtool = require_tool("amtool")

    result = subprocess.run([amtool, "check-config", str(rendered)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=AppDown"], "oncall-email"),
        (["severity=warning", "alertname=HighCpuUsage"], "team-email"),
        (["alertname=SomethingWithoutSeverity"], "team-email"),
    ],
)
def test_it_routes_alerts_by_severity(rendered, labels, receiver):
    amtool = require_tool("amtool")

    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={rendered}", *labels],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [receiver]


def test_it_takes_the_mail_settings_from_the_environment(rendered, env_example):
    config = yaml.safe_load(rendered.read_text())

    assert config["global"]["smtp_smarthost"] == env_example["SMTP_SMARTHOST"]
    assert config["global"]["smtp_auth_password"] == env_example["SMTP_AUTH_PASSWORD"]
    receivers = {r["name"]: r["email_configs"][0]["to"] for r in config["receivers"]}
    assert receivers == {
        "oncall-email": env_example["ALERT_EMAIL_CRITICAL_TO"],
        "team-email": env_example["ALERT_EMAIL_TO"],
    }


@pytest.mark.parametrize("awk", ["busybox awk", "gawk", "mawk"])
def test_it_keeps_any_password_intact_with_every_awk(tmp_path, env_example, awk):
    # The image runs busybox's awk (required); gawk and mawk are what a
    # workstation may have, checked when present.
    program, *args = awk.split()
    tool = require_tool(program) if program == "busybox" else shutil.which(program)
    if tool is None:
        pytest.skip(f"{program} is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "awk").write_text(f'#!/bin/sh\nexec {tool} {" ".join(args)} "$@"\n')
    (bin_dir / "awk").chmod(0o755)
    password = 'it\'s $HOME & \\n "quoted" ${NOT_A_VAR} #not-a-comment'
    environ = {name: env_example[name] for name in _variables()}
    environ["SMTP_AUTH_PASSWORD"] = password
    environ["PATH"] = f"{bin_dir}:/usr/bin:/bin"

    result = _render(tmp_path, environ)

    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())
    assert config["global"]["smtp_auth_password"] == password


def test_it_refuses_to_render_with_a_variable_missing(tmp_path, env_example):
    environ = {name: env_example[name] for name in _variables() if name != "ALERT_EMAIL_TO"}

    result = _render(tmp_path, environ)

    assert result.returncode != 0
    assert "ALERT_EMAIL_TO is not set" in result.stderr


def test_it_runs_under_the_images_busybox_shell(tmp_path, env_example):
    busybox = require_tool("busybox")
    environ = {name: env_example[name] for name in _variables()}

    result = _render(tmp_path, environ, shell=[busybox, "sh"])

    assert result.returncode == 0, result.stderr


def test_it_gets_every_variable_it_needs_from_compose(compose):
    service = compose["services"]["alertmanager"]

    assert _variables() <= set(service["environment"])
    assert service["entrypoint"][:2] == ["/bin/sh", "/etc/alertmanager/render-config.sh"]
    assert "./deploy/alertmanager:/etc/alertmanager:ro" in service["volumes"]
