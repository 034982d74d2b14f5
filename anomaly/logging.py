"""Logging: every line, ours or a library's, is one JSON object with Elastic
Common Schema (ECS) field names, written to stdout and to ``LOG_DIR/app.log``.

Django applies the dictionary returned by ``build_logging_config`` at start-up
(gunicorn's master applies the same one through ``logconfig_dict``). Building
the formatter is what configures structlog, so importing this module does no
work and nothing happens until logging is actually set up.

Field layout (flat, dotted keys; Filebeat's ``expand_keys`` nests them):

* always: ``@timestamp`` (UTC, ISO 8601), ``log.level`` (lower case),
  ``log.logger``, ``message``, ``ecs.version``, ``service.name``,
  ``process.pid``, ``host.hostname``; ``error.type`` / ``error.message`` /
  ``error.stack_trace`` when an exception is attached.
* structlog events, e.g. ``log.info("model.trained", algorithm="lof",
  version=3)``: the event name is both ``message`` and ``event.action``; a
  keyword whose name contains a dot is taken as an ECS field and kept as it
  is (``**{"url.path": "/x"}``); every other keyword is ours and goes under
  the ``anomaly.`` namespace (``anomaly.algorithm``, ``anomaly.version``), so
  it can never collide with an ECS field.
* values bound with ``structlog.contextvars`` (the request id bound by
  ``anomaly.middleware``) are added to every line logged while they are
  bound, including lines from Django and other libraries.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import os
import socket
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

ECS_VERSION = "8.11.0"
SERVICE_NAME = "anomaly"
NAMESPACE = "anomaly"
LOG_FILE_NAME = "app.log"

# Keys our own processors put in or structlog's internals use; not user data.
_INTERNAL_KEYS = frozenset({"_record", "_from_structlog", "exc_info", "stack_info", "event"})
_JSON_OPTIONS: dict[str, Any] = {"default": str, "ensure_ascii": False, "separators": (",", ":")}


def build_logging_config(*, log_dir: Path, level: str) -> dict[str, Any]:
    """The ``LOGGING`` dictionary. Pure: touches neither files nor structlog."""
    handlers = ["console", "file"]
    return {
        "version": 1,
        # gunicorn's loggers exist before Django configures logging in a worker.
        "disable_existing_loggers": False,
        "formatters": {"ecs": {"()": "anomaly.logging.ecs_formatter"}},
        "handlers": {
            "null": {"class": "logging.NullHandler"},
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "ecs",
                "stream": "ext://sys.stdout",
            },
            "file": {
                "()": "anomaly.logging.LogFileHandler",
                "filename": str(Path(log_dir) / LOG_FILE_NAME),
                "formatter": "ecs",
            },
        },
        "root": {"handlers": handlers, "level": level},
        "loggers": {
            # Replaces Django's default handlers (console only under DEBUG,
            # mail_admins); records reach ours through the root logger.
            "django": {"handlers": [], "level": level, "propagate": True},
            # Our middleware writes one line per request; Django's own "Not
            # Found: /x" warnings and runserver's access lines would repeat it.
            # Tracebacks of 500s are still logged at ERROR.
            "django.request": {"handlers": [], "level": "ERROR", "propagate": True},
            "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
            "gunicorn.error": {"handlers": handlers, "level": level, "propagate": False},
            # Off: the middleware's request line carries more (gunicorn turns
            # its access log on whenever it is given a logging dictionary).
            "gunicorn.access": {"handlers": ["null"], "level": "WARNING", "propagate": False},
        },
    }


def ecs_formatter() -> logging.Formatter:
    """The formatter factory named in the config; configures structlog once."""
    configure_structlog()
    return _RenderOnce(
        # Lines from the standard library (Django, gunicorn) also carry the
        # request id bound for the current request.
        foreign_pre_chain=[structlog.contextvars.merge_contextvars],
        processors=[ecs_processor, render_json],
    )


class _RenderOnce(structlog.stdlib.ProcessorFormatter):
    """Renders a record once, however many handlers write it: stdout and the
    file each asked for the whole processor chain again, a tenth of a
    single-transaction request."""

    def format(self, record: logging.LogRecord) -> str:
        rendered = getattr(record, "_ecs_line", None)
        if rendered is None or rendered[0] is not self:
            rendered = (self, super().format(record))
            record._ecs_line = rendered  # type: ignore[attr-defined]
        return rendered[1]


def configure_structlog() -> None:
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def ecs_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Rename one structlog/stdlib event into ECS fields."""
    record: logging.LogRecord | None = event_dict.get("_record")
    from_structlog = bool(event_dict.get("_from_structlog"))
    message = event_dict.get("event", "")
    if not isinstance(message, str):
        message = str(message)

    created = record.created if record is not None else datetime.now(tz=UTC).timestamp()
    out: dict[str, Any] = {
        "@timestamp": _isoformat(created),
        "log.level": (record.levelname if record is not None else _method).lower(),
        "log.logger": record.name if record is not None else "",
        "message": message,
        "ecs.version": ECS_VERSION,
        "service.name": SERVICE_NAME,
        "process.pid": os.getpid(),
        "host.hostname": _hostname(),
    }
    if from_structlog:
        out["event.action"] = event_dict.get("event.action", message)

    for key, value in event_dict.items():
        if key in _INTERNAL_KEYS or key.startswith("_") or key == "event.action":
            continue
        name = key if "." in key else f"{NAMESPACE}.{key}"
        if name in out:  # never let a keyword overwrite a core field
            name = f"{NAMESPACE}.{key}"
        out[name] = value

    exc_info = _exc_info(event_dict.get("exc_info"))
    if exc_info is not None:
        exc_type, exc_value, exc_tb = exc_info
        out["error.type"] = exc_type.__name__ if exc_type is not None else ""
        out["error.message"] = str(exc_value)
        out["error.stack_trace"] = "".join(
            traceback.format_exception(exc_type, exc_value, exc_tb)
        ).rstrip()
    return out


def render_json(_logger: Any, _method: str, event_dict: dict[str, Any]) -> str:
    try:
        return json.dumps(event_dict, **_JSON_OPTIONS, allow_nan=False)
    except ValueError:
        # NaN and infinities are not JSON; Elasticsearch would reject the line.
        return json.dumps(_finite(event_dict), **_JSON_OPTIONS)


class LogFileHandler(logging.handlers.WatchedFileHandler):
    """Appends to ``LOG_DIR/app.log``; never takes the process down.

    The directory is created when the first line is written, not when logging
    is configured. If it cannot be created or the file cannot be written, the
    handler says so once on stderr and keeps trying quietly on later lines:
    stdout has every line either way. Being a WatchedFileHandler, it reopens
    the file once logrotate has moved it away (deploy/logrotate/anomaly), so
    every gunicorn worker follows a rotation without a signal.
    """

    def __init__(self, filename: str, encoding: str = "utf-8") -> None:
        self._reported = False
        super().__init__(filename, encoding=encoding, delay=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.stream is None:
                Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
                self.stream = self._open()
                self._statstream()
            super().emit(record)
        except OSError as exc:
            self._report(exc)

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            self._report(exc)
            self.close()  # reopened on the next line
        else:
            super().handleError(record)

    def _report(self, exc: OSError) -> None:
        if self._reported:
            return
        self._reported = True
        line = {
            "@timestamp": _isoformat(datetime.now(tz=UTC).timestamp()),
            "log.level": "warning",
            "log.logger": __name__,
            "message": f"cannot write {self.baseFilename}; logging to stdout only",
            "error.type": type(exc).__name__,
            "error.message": str(exc),
            "ecs.version": ECS_VERSION,
        }
        sys.stderr.write(json.dumps(line) + "\n")


def _isoformat(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_HOSTNAME: str | None = None


def _hostname() -> str:
    # In a container this is the container id, which tells replicas apart.
    global _HOSTNAME
    if _HOSTNAME is None:
        _HOSTNAME = socket.gethostname()
    return _HOSTNAME


def _exc_info(value: Any) -> tuple[Any, Any, Any] | None:
    if not value:
        return None
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3:
        return value if value[0] is not None else None
    info = sys.exc_info()
    return info if info[0] is not None else None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
