"""gunicorn with anomaly/gunicorn_conf.py, for real: two workers, the master's
metrics port, JSON logs, and the multiprocess directory's life cycle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from tests.anomaly.db.wal import file_alone_holds, log_rows

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read().decode()


def _wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _sample(exposition: str, prefix: str) -> float | None:
    for line in exposition.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


@dataclass
class Gunicorn:
    process: subprocess.Popen
    port: int
    metrics_port: int
    multiproc_dir: Path
    log_dir: Path
    stdout: Path
    database: Path

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line]

    def worker_pids(self) -> list[int]:
        prefix = "Booting worker with pid: "
        return [
            int(line["message"].removeprefix(prefix))
            for line in self.lines()
            if line["message"].startswith(prefix)
        ]

    def metrics(self) -> str:
        return _get(f"http://127.0.0.1:{self.metrics_port}/metrics")[2]


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory) -> Iterator[Gunicorn]:
    tmp = tmp_path_factory.mktemp("gunicorn")
    multiproc_dir = tmp / "prometheus"
    multiproc_dir.mkdir()
    (multiproc_dir / "counter_99999.db").write_bytes(b"left by a previous run")
    (multiproc_dir / "keep.txt").write_text("not a metrics file")
    port, metrics_port = _free_port(), _free_port()
    stdout = tmp / "stdout.log"
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "PYTHONPATH": str(settings.BASE_DIR),
        "PYTHONWARNINGS": "ignore",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "LOG_DIR": str(tmp / "log"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(metrics_port),
        "WEB_CONCURRENCY": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "5",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
    }
    with stdout.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "anomaly/gunicorn_conf.py", "anomaly.wsgi"],
            cwd=settings.BASE_DIR,
            env=environ,
            stdout=out,
            stderr=subprocess.PIPE,
        )
    server = Gunicorn(
        process, port, metrics_port, multiproc_dir, tmp / "log", stdout, tmp / "db.sqlite3"
    )
    try:
        _wait_for(lambda: _get(f"http://127.0.0.1:{port}/api/health/")[0] == 200)
        _wait_for(lambda: len(server.worker_pids()) == 2)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_it_wipes_metric_files_left_by_a_previous_run(gunicorn):
    assert not (gunicorn.multiproc_dir / "counter_99999.db").exists()
    assert (gunicorn.multiproc_dir / "keep.txt").exists()  # only *.db files go


def _settled_sample(gunicorn, prefix: str) -> float | None:
    # A readiness poll that timed out on a loaded machine is still answered,
    # and counted, later: wait until the count stops moving.
    previous = _sample(gunicorn.metrics(), prefix)
    for _ in range(50):
        time.sleep(0.2)
        current = _sample(gunicorn.metrics(), prefix)
        if current == previous:
            return current
        previous = current
    return previous


def test_it_serves_the_sum_of_all_workers_on_the_metrics_port(gunicorn):
    before = _settled_sample(gunicorn, 'django_http_responses_total_by_status_total{status="200"}')
    for _ in range(20):
        _get(f"http://127.0.0.1:{gunicorn.port}/api/health/")

    after = _sample(gunicorn.metrics(), 'django_http_responses_total_by_status_total{status="200"}')

    assert after - (before or 0) == 20
    assert _sample(gunicorn.metrics(), "anomaly_process_resident_memory_bytes") > 0


def test_it_serves_the_same_aggregate_on_the_django_metrics_view(gunicorn):
    exposition = _get(f"http://127.0.0.1:{gunicorn.port}/metrics")[2]
    assert 'anomaly_predictions_total{model="isolation_forest",verdict="anomaly"}' in exposition


def test_its_workers_copy_the_sqlite_log_into_the_database_file(gunicorn):
    # This writer never checkpoints, so only the workers' threads can have put
    # its rows into the database file itself.
    writer = log_rows(gunicorn.database)
    try:
        _wait_for(lambda: file_alone_holds(gunicorn.database, "probe"), timeout=10)
    finally:
        writer.close()


def test_its_workers_keep_freed_memory(gunicorn):
    # anomaly/allocator.py, MALLOC_KEEP_MB's default: set in each worker.
    messages = [line["message"] for line in gunicorn.lines()]
    for pid in gunicorn.worker_pids():
        assert f"worker {pid} keeps up to 256 MB of freed memory" in messages


def test_its_workers_collect_garbage_between_requests(gunicorn):
    # anomaly/collector.py, GC_LARGE_REQUEST_BYTES's default: set in each worker once
    # it has warmed up, which may be after the fixture's first answer.
    def logged() -> bool:
        messages = {line["message"] for line in gunicorn.lines()}
        return all(
            f"worker {pid} collects garbage after requests of 32768 bytes or more, not during them"
            in messages
            for pid in gunicorn.worker_pids()
        )

    assert _wait_for(logged)


def test_it_does_not_serve_the_application_on_the_metrics_port(gunicorn):
    status, _, body = _get(f"http://127.0.0.1:{gunicorn.metrics_port}/api/health/")
    assert '"status"' not in body  # the exporter answers every path with metrics only
    assert status == 200


def test_it_logs_json_only_and_no_access_log(gunicorn):
    _get(f"http://127.0.0.1:{gunicorn.port}/api/health/", {"X-Request-ID": "gunicorn-test"})

    lines = _wait_for(
        lambda: [
            line for line in gunicorn.lines() if line.get("http.request.id") == "gunicorn-test"
        ]
    )
    assert len(lines) == 1  # one line per request: ours; gunicorn's access log is off
    assert not [line for line in gunicorn.lines() if line["log.logger"] == "gunicorn.access"]
    master = [line for line in gunicorn.lines() if line["message"].startswith("Listening at")]
    assert master and master[0]["log.logger"] == "gunicorn.error"
    assert (gunicorn.log_dir / "app.log").exists()


def _healthcheck(port: int, allowed_hosts: str) -> subprocess.CompletedProcess[str]:
    # The image's HEALTHCHECK, run against this gunicorn.
    return subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "deploy" / "app" / "healthcheck.py")],
        env={"PATH": "/usr/bin:/bin", "PORT": str(port), "DJANGO_ALLOWED_HOSTS": allowed_hosts},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_it_passes_the_container_health_check(gunicorn):
    assert _healthcheck(gunicorn.port, "testserver,.example.com").returncode == 0


def test_it_fails_the_health_check_when_the_host_is_not_allowed(gunicorn):
    # The check sends the first allowed host; Django refusing it must show.
    assert _healthcheck(gunicorn.port, "not-allowed.example").returncode == 1


def test_it_fails_the_health_check_when_nothing_listens():
    assert _healthcheck(_free_port(), "testserver").returncode == 1


def test_it_drops_a_dead_workers_live_gauges_but_keeps_its_counts(gunicorn):
    pid = gunicorn.worker_pids()[0]
    _wait_for(lambda: (gunicorn.multiproc_dir / f"gauge_livesum_{pid}.db").exists())
    total_before = _sample(gunicorn.metrics(), "django_http_responses_total_by_status_total")

    os.kill(pid, signal.SIGKILL)

    _wait_for(lambda: not (gunicorn.multiproc_dir / f"gauge_livesum_{pid}.db").exists())
    _wait_for(lambda: len(gunicorn.worker_pids()) == 3)  # the master replaced it
    total_after = _sample(gunicorn.metrics(), "django_http_responses_total_by_status_total")
    assert total_after >= total_before
