"""Real deployments for the reliability tests: a database of their own on the
test run's engine, an artifacts folder, gunicorn in a subprocess.

The test process's own database is the pytest-django test database; these
tests need the application as it runs in production instead, in processes of
its own that the tests can starve, break and restart. One seeded template per
test process (migrated, two users with tokens, 900 transactions of 60 steady
accounts, both detectors trained: version 1 active, version 2 not) is copied
for each deployment: a file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on
PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
PASSWORD = "reliability-pass-123"

# Run in a subprocess against the template database.
_SEED = """
import sys
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from detection.training import models_train
from tests.factories import habitual_items, store

call_command("migrate", verbosity=0)
User = get_user_model()
ops = User.objects.create_user("ops", password=sys.argv[3], is_staff=True)
client = User.objects.create_user("client", password=sys.argv[3])
Token.objects.create(user=ops, key=sys.argv[1])
Token.objects.create(user=client, key=sys.argv[2])
store(habitual_items(accounts=60, per_account=15, seed=11, prefix="H"))
models_train()
# A second version of each, trained but not active: something to switch to.
models_train(activate=False)
"""


def _die_with_this_process() -> None:
    """In the child, before exec: get SIGTERM when the test process dies, so
    a killed test run leaves no server behind (gunicorn's workers follow
    their master). Linux only; elsewhere the fixtures' teardown has to do."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def engine() -> str:
    return "postgresql" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "sqlite"


# --- databases ----------------------------------------------------------------


@dataclass
class Database:
    vendor: str
    name: str  # a file path for SQLite, a database name for PostgreSQL

    @property
    def url(self) -> str:
        if self.vendor == "sqlite":
            return f"sqlite:///{self.name}"
        return _server_url(self.name)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of one statement, written with %s placeholders."""
        if self.vendor == "sqlite":
            with closing(sqlite3.connect(self.name, timeout=20)) as connection, connection:
                return connection.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(_conninfo(self.name), autocommit=True) as connection:
            cursor = connection.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []

    def copy(self, folder: Path) -> Database:
        if self.vendor == "sqlite":
            target = folder / "db.sqlite3"
            for suffix in ("", "-wal", "-shm"):
                if Path(self.name + suffix).exists():
                    shutil.copy(self.name + suffix, str(target) + suffix)
            return Database("sqlite", str(target))
        copy = Database("postgresql", f"anomaly_rel_{uuid.uuid4().hex[:12]}")
        admin(f'CREATE DATABASE "{copy.name}" TEMPLATE "{self.name}"')
        return copy

    def drop(self) -> None:
        if self.vendor == "postgresql":
            admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _server() -> dict[str, Any]:
    return settings.DATABASES["default"]


def _conninfo(dbname: str) -> str:
    server = _server()
    parts = {
        "host": server.get("HOST") or "127.0.0.1",
        "port": server.get("PORT") or 5432,
        "user": server.get("USER") or "postgres",
        "password": server.get("PASSWORD") or "",
        "dbname": dbname,
    }
    return " ".join(f"{key}='{value}'" for key, value in parts.items() if value != "")


def _server_url(dbname: str) -> str:
    server = _server()
    credentials = quote(server.get("USER") or "postgres")
    if server.get("PASSWORD"):
        credentials += ":" + quote(server["PASSWORD"])
    host = server.get("HOST") or "127.0.0.1"
    return f"postgres://{credentials}@{host}:{server.get('PORT') or 5432}/{dbname}"


def admin(sql: str) -> list[tuple]:
    """One statement on the PostgreSQL server's maintenance database."""
    import psycopg

    with psycopg.connect(_conninfo("postgres"), autocommit=True) as connection:
        cursor = connection.execute(sql)
        return cursor.fetchall() if cursor.description else []


# --- the application in its own processes -------------------------------------


@dataclass
class Seed:
    database: Database
    artifacts: Path
    staff_token: str
    user_token: str


def base_env(*, database: Database, artifacts: Path, folder: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "PYTHONPATH": str(BASE_DIR),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "anomaly.settings",
        "DJANGO_ENV": "local",
        "DJANGO_SECRET_KEY": "reliability-" + "k" * 50,
        "DATABASE_URL": database.url,
        "ML_ARTIFACTS_DIR": str(artifacts),
        "ML_IF_N_ESTIMATORS": "60",
        "LOG_DIR": str(folder / "log"),
        **extra,
    }


def seed(folder: Path) -> Seed:
    if engine() == "sqlite":
        database = Database("sqlite", str(folder / "template.sqlite3"))
    else:
        database = Database("postgresql", f"anomaly_tpl_{uuid.uuid4().hex[:12]}")
        admin(f'CREATE DATABASE "{database.name}"')
    staff_token, user_token = secrets.token_hex(20), secrets.token_hex(20)
    artifacts = folder / "artifacts"
    result = subprocess.run(
        [sys.executable, "-c", _SEED, staff_token, user_token, PASSWORD],
        cwd=BASE_DIR,
        env=base_env(database=database, artifacts=artifacts, folder=folder),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        database.drop()
        raise RuntimeError(f"seeding the template failed:\n{result.stderr[-4000:]}")
    return Seed(database, artifacts, staff_token, user_token)


_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+) ")


@dataclass
class Server:
    """One gunicorn master and its workers, on a port the kernel chose."""

    process: subprocess.Popen
    output: Path
    log_file: Path
    token: str
    _url: str | None = None

    @property
    def url(self) -> str:
        # Bound to port 0 and read back from gunicorn's log: a port picked
        # in advance could be taken by another test process meanwhile.
        deadline = time.monotonic() + 90
        while self._url is None:
            found = _LISTENING.search(self.output.read_text())
            if found:
                self._url = f"http://127.0.0.1:{found.group(1)}"
            elif self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start:\n" + self.output.read_text()[-4000:])
            else:
                time.sleep(0.05)
        return self._url

    def session(self, token: str | None = None) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token or self.token}"
        return session

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session().get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.session(kwargs.pop("token", None)).post(
            self.url + path, json=body, timeout=30, **kwargs
        )

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line]

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the Prometheus exposition at /metrics (0 when absent)."""
        text = requests.get(self.url + "/metrics", timeout=30).text
        wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith("#") or " " not in line:
                continue
            series, value = line.rsplit(" ", 1)
            metric_name, _, label_text = series.partition("{")
            found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
            if metric_name == name and found == wanted:
                return float(value)
        return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        import psutil

        return [child.pid for child in psutil.Process(self.process.pid).children()]


@dataclass
class Deployment:
    """A copy of the seed: its own database, artifacts folder, processes."""

    database: Database
    artifacts: Path
    folder: Path
    staff_token: str
    user_token: str
    servers: list[Server] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return base_env(
            database=self.database, artifacts=self.artifacts, folder=self.folder, **extra
        )

    def start(self, *, workers: int = 1, wait: bool = True, **extra: str) -> Server:
        name = f"gunicorn-{len(self.servers)}"
        output = self.folder / f"{name}.out"
        log_dir = self.folder / name
        env = self.env(
            WEB_CONCURRENCY=str(workers),
            METRICS_PORT="0",
            LOG_DIR=str(log_dir),
            PROMETHEUS_MULTIPROC_DIR=str(self.folder / f"{name}-prometheus"),
            **extra,
        )
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "anomaly/gunicorn_conf.py",
                    "--bind",
                    "127.0.0.1:0",
                    "anomaly.wsgi",
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_this_process,
            )
        server = Server(
            process=process,
            output=output,
            log_file=log_dir / "app.log",
            token=self.user_token,
        )
        self.servers.append(server)
        if wait:
            wait_until_answering(server)
        return server

    def manage(self, *args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen_manage(self, *args: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_this_process,
        )

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.database.query(sql, params)

    def active_versions(self) -> dict[str, int]:
        return dict(
            self.query("SELECT algorithm, version FROM detection_modelversion WHERE is_active")
        )

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.database.drop()


def wait_until_answering(server: Server, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {server.process.returncode}:\n"
                + server.output.read_text()[-4000:]
            )
        try:
            # The socket accepts at once; the worker answers once Django is up.
            if requests.get(server.url + "/api/health/", timeout=10).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer in time:\n" + server.output.read_text()[-4000:])


@contextmanager
def deployment_of(seed: Seed, folder: Path) -> Iterator[Deployment]:
    artifacts = folder / "artifacts"
    shutil.copytree(seed.artifacts, artifacts)
    deployment = Deployment(
        database=seed.database.copy(folder),
        artifacts=artifacts,
        folder=folder,
        staff_token=seed.staff_token,
        user_token=seed.user_token,
    )
    try:
        yield deployment
    finally:
        deployment.close()
