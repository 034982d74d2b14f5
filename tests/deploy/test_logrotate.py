"""logrotate: the committed config parses without errors, and a real rotation
cooperates with the application's log handler (no copytruncate, no signal)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from pathlib import Path

from anomaly.logging import LogFileHandler, ecs_formatter
from tests.deploy.conftest import DEPLOY, ROOT, require_tool

CONFIG = DEPLOY / "logrotate" / "anomaly"


def _copy_config(tmp_path: Path, log_dir: Path | None = None) -> Path:
    text = CONFIG.read_text()
    if log_dir is not None:
        text = text.replace("/var/log/anomaly/", f"{log_dir}/")
    config = tmp_path / "anomaly.conf"
    config.write_text(text)
    # logrotate ignores (with an error, exit status 0) a config that is
    # writable by group or others, whatever the checkout's umask made it.
    config.chmod(0o644)
    return config


def _run(logrotate: str, config: Path, state: Path, *flags: str) -> str:
    result = subprocess.run(
        [logrotate, *flags, "--state", str(state), str(config)],
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_it_parses_the_config_without_errors(tmp_path):
    logrotate = require_tool("logrotate")

    output = _run(logrotate, _copy_config(tmp_path), tmp_path / "state", "--debug")

    # logrotate exits 0 even when it ignores lines or whole files.
    errors = [line for line in output.splitlines() if re.search(r"error|ignor", line, re.I)]
    assert errors == []
    assert "rotating pattern: /var/log/anomaly/app.log" in output


def test_it_rotates_the_file_the_image_logs_to():
    assert "LOG_DIR=/var/log/anomaly" in (ROOT / "Dockerfile").read_text()
    assert re.search(r"^/var/log/anomaly/app\.log \{", CONFIG.read_text(), re.MULTILINE)


def test_it_rotates_and_the_app_continues_in_a_new_file(tmp_path):
    logrotate = require_tool("logrotate")
    log_dir = tmp_path / "log"
    handler = LogFileHandler(str(log_dir / "app.log"))
    handler.setFormatter(ecs_formatter())
    config = _copy_config(tmp_path, log_dir)
    state = tmp_path / "state"

    handler.emit(logging.makeLogRecord({"msg": "first"}))
    _run(logrotate, config, state, "--force")
    handler.emit(logging.makeLogRecord({"msg": "second"}))
    time.sleep(1.1)  # rotated names carry the epoch second
    _run(logrotate, config, state, "--force")
    handler.emit(logging.makeLogRecord({"msg": "third"}))
    handler.close()

    names = sorted(path.name for path in log_dir.iterdir())
    compressed = [name for name in names if name.endswith(".gz")]
    plain = [name for name in names if name.startswith("app.log-") and name not in compressed]
    assert len(compressed) == 1  # the older one, one cycle later (delaycompress)
    assert len(plain) == 1  # the newer one stays readable for Filebeat
    assert json.loads((log_dir / plain[0]).read_text())["message"] == "second"
    assert json.loads((log_dir / "app.log").read_text())["message"] == "third"
