"""Log lines are one JSON object each, with Elastic Common Schema names, on
stdout and in LOG_DIR/app.log."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from django.conf import settings

from anomaly.logging import LogFileHandler, build_logging_config, ecs_formatter

CORE_FIELDS = {"@timestamp", "log.level", "log.logger", "message", "ecs.version"}


@pytest.fixture
def lines():
    """Everything logged while the test runs, parsed, through our formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ecs_formatter())
    root = logging.getLogger()
    root.addHandler(handler)

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    root.removeHandler(handler)


def test_it_turns_a_domain_event_into_ecs_fields(lines):
    structlog.get_logger("detection").info("model.trained", algorithm="isolation_forest", version=3)

    (line,) = lines()
    assert line.keys() >= CORE_FIELDS
    assert line["message"] == "model.trained"
    assert line["event.action"] == "model.trained"
    assert line["log.level"] == "info"
    assert line["log.logger"] == "detection"
    assert line["anomaly.algorithm"] == "isolation_forest"
    assert line["anomaly.version"] == 3
    assert "algorithm" not in line and "event" not in line
    assert line["@timestamp"].endswith("Z") and "T" in line["@timestamp"]


def test_it_keeps_dotted_keys_as_ecs_fields_but_never_over_a_core_field(lines):
    structlog.get_logger("detection").warning(
        "import.finished", **{"event.duration": 12, "message": "spoofed", "rows": 4}
    )

    (line,) = lines()
    assert line["event.duration"] == 12
    assert line["message"] == "import.finished"
    assert line["anomaly.message"] == "spoofed"
    assert line["anomaly.rows"] == 4
    assert line["log.level"] == "warning"


def test_it_formats_library_lines_and_their_exceptions(lines):
    try:
        raise ValueError("bad artifact")
    except ValueError:
        logging.getLogger("django.request").exception("Internal Server Error: /x")

    (line,) = lines()
    assert line["log.logger"] == "django.request"
    assert line["log.level"] == "error"
    assert line["message"] == "Internal Server Error: /x"
    assert "event.action" not in line  # not one of our events
    assert line["error.type"] == "ValueError"
    assert line["error.message"] == "bad artifact"
    assert "Traceback" in line["error.stack_trace"]


def test_it_adds_bound_context_to_library_lines(lines):
    structlog.contextvars.bind_contextvars(**{"http.request.id": "req-1"})
    try:
        logging.getLogger("django.db").warning("slow query")
    finally:
        structlog.contextvars.clear_contextvars()
    logging.getLogger("django.db").warning("after the request")

    first, second = lines()
    assert first["http.request.id"] == "req-1"
    assert "http.request.id" not in second


def test_it_never_writes_nan_which_is_not_json(lines):
    structlog.get_logger("detection").info("scored", score=float("nan"), worst=[float("inf")])

    (line,) = lines()
    assert line["anomaly.score"] is None
    assert line["anomaly.worst"] == [None]


def test_it_respects_the_configured_level(lines):
    structlog.get_logger("detection").debug("noise")
    assert lines() == []


def test_it_writes_to_a_log_dir_it_creates_on_first_use(tmp_path):
    log_file = tmp_path / "nested" / "log" / "app.log"
    handler = LogFileHandler(str(log_file))
    handler.setFormatter(ecs_formatter())
    assert not log_file.parent.exists()  # configuring logging touches nothing

    handler.emit(logging.makeLogRecord({"name": "x", "msg": "hello", "levelname": "INFO"}))
    handler.close()

    assert json.loads(log_file.read_text())["message"] == "hello"


def test_it_reopens_the_file_after_logrotate_moved_it(tmp_path):
    log_file = tmp_path / "app.log"
    handler = LogFileHandler(str(log_file))
    handler.setFormatter(ecs_formatter())
    handler.emit(logging.makeLogRecord({"msg": "before"}))
    log_file.rename(tmp_path / "app.log.1")  # what logrotate does without copytruncate

    handler.emit(logging.makeLogRecord({"msg": "after"}))
    handler.close()

    assert json.loads((tmp_path / "app.log.1").read_text())["message"] == "before"
    assert json.loads(log_file.read_text())["message"] == "after"


def test_it_reports_an_unwritable_log_dir_once_and_carries_on(tmp_path, capsys):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    handler = LogFileHandler(str(blocker / "app.log"))
    handler.setFormatter(ecs_formatter())

    for _ in range(3):
        handler.emit(logging.makeLogRecord({"msg": "lost"}))

    reports = capsys.readouterr().err.strip().splitlines()
    assert len(reports) == 1
    assert "logging to stdout only" in json.loads(reports[0])["message"]


def test_it_silences_djangos_duplicate_request_warnings():
    config = build_logging_config(log_dir=Path("/nonexistent"), level="INFO")
    logging.config.dictConfig(config)
    try:
        assert not logging.getLogger("django.request").isEnabledFor(logging.WARNING)
        assert logging.getLogger("django.request").isEnabledFor(logging.ERROR)
        assert not logging.getLogger("gunicorn.access").isEnabledFor(logging.INFO)
    finally:
        logging.config.dictConfig(settings.LOGGING)


_SCRIPT = """
import django, structlog
django.setup()
from django.test import Client
Client().get("/api/health/", HTTP_X_REQUEST_ID="from-subprocess")
structlog.get_logger("detection").info("model.activated", algorithm="isolation_forest")
"""


def _run(tmp_path: Path, log_dir: Path) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(settings.BASE_DIR),
        "DJANGO_SETTINGS_MODULE": "anomaly.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "LOG_DIR": str(log_dir),
    }
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _SCRIPT],
        env=environ,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_it_writes_the_same_json_lines_to_stdout_and_the_log_file(tmp_path):
    log_dir = tmp_path / "log"

    result = _run(tmp_path, log_dir)

    stdout = [json.loads(line) for line in result.stdout.splitlines()]
    in_file = [json.loads(line) for line in (log_dir / "app.log").read_text().splitlines()]
    assert stdout == in_file
    request_line, event_line = stdout
    assert request_line["http.request.id"] == "from-subprocess"
    assert request_line["url.path"] == "/api/health/"
    assert event_line["event.action"] == "model.activated"


def test_it_logs_to_stdout_only_when_the_log_dir_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")

    result = _run(tmp_path, blocker / "log")

    assert [json.loads(line)["message"] for line in result.stdout.splitlines()] == [
        "GET /api/health/ 200",
        "model.activated",
    ]
    assert "logging to stdout only" in result.stderr


def test_it_renders_a_record_once_for_every_handler_and_again_for_another_formatter():
    formatter, other = ecs_formatter(), ecs_formatter()
    record = logging.LogRecord("anomaly.test", logging.INFO, __file__, 1, "hello %s", ("x",), None)

    first = formatter.format(record)

    # Stdout and the file share one formatter: the second asks for the same text.
    assert formatter.format(record) is first
    # A formatter of its own renders afresh, to the same line.
    again = other.format(record)
    assert again is not first
    assert json.loads(again)["message"] == json.loads(first)["message"] == "hello x"
