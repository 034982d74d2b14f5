"""Load and soak benchmark: gunicorn + PostgreSQL (+ Redis) under mixed
traffic, as a bank's clients and analysts would send it.

    uv run python -m bench.load [--clients 8,32] [--seconds 60] [--workers 2]
                                [--server postgres://postgres@127.0.0.1:5432]
                                [--redis-url redis://127.0.0.1:6379/3 | none]
                                [--json FILE] [--keep]

Creates a throw-away database on the PostgreSQL server, sets it up the way an
operator would (``migrate``, ``import_transactions`` of the sample,
``train_models``, a user and a token), starts gunicorn with the project's
``anomaly/gunicorn_conf.py`` and production settings, and then, for each
client count, runs that many clients for the given time. Each client loops
over a weighted mix:

* 50 % one new transaction scored and stored (``POST /api/predict/``);
* 10 % a batch of 100 new transactions (``POST /api/predict/``);
* 25 % a page of the transaction list (``GET /api/transactions/``);
* 15 % an account's transactions (``GET /api/accounts/{id}/transactions/``).

It reports requests/s, p50/p95/p99 latency overall and per kind, the error
rate (any answer but 200, or no answer), that the rows stored are exactly
the rows accepted, and the resident memory of the gunicorn workers before and
after each run. It exits non-zero when an error occurred or a row is missing.

The clients are threads in this process sharing the machine with the server,
as a load generator on the same host would; on a 2-core machine they take a
noticeable share of it.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
SAMPLE = BASE_DIR / "fixtures" / "sample_transactions.csv"
MIX = {"single": 50, "batch_100": 10, "list": 25, "account": 15}
# Not in the default mix: one transaction of the sample sent again. It is
# scored like a new one but stores nothing new, so memory can be watched
# under scoring while the data stays the same size.
KINDS = (*MIX, "repeat")
ID_PREFIX = "LD"


# --- the deployment -----------------------------------------------------------


def _die_with_this_process() -> None:
    # In the child: SIGTERM when the benchmark dies, so no server outlives it.
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Database:
    """A database of its own on the PostgreSQL server, dropped afterwards."""

    def __init__(self, server: str) -> None:
        self.server = server.rstrip("/")
        self.name = f"anomaly_load_{uuid.uuid4().hex[:10]}"
        self.url = f"{self.server}/{self.name}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"{self.server}/postgres", autocommit=True) as connection:
            connection.execute(sql)

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def count(self, sql: str, *params: Any) -> int:
        import psycopg

        with psycopg.connect(self.url) as connection:
            return connection.execute(sql, params).fetchone()[0]


@dataclass
class Deployment:
    folder: Path
    database: Database
    env: dict[str, str]
    port: int
    token: str = ""
    process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def prepare(self) -> None:
        self.manage("migrate", "--noinput", "-v0")
        print("  ", self.manage("import_transactions", str(SAMPLE)).strip().splitlines()[-1])
        print("  ", self.manage("train_models").strip().splitlines()[-1])
        self.manage(
            "createsuperuser", "--noinput", "--username", "bench", "--email", "bench@example.com"
        )
        self.token = self.manage("drf_create_token", "bench").split()[2]

    def start(self) -> None:
        with (self.folder / "gunicorn.out").open("wb") as sink:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "anomaly/gunicorn_conf.py",
                    "anomaly.wsgi",
                ],
                cwd=BASE_DIR,
                # Only gunicorn: its config creates the folder before any worker.
                env={**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.folder / "prometheus")},
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_this_process,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit((self.folder / "gunicorn.out").read_text()[-3000:])
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request("GET", "/api/health/")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not start")

    def workers(self) -> list[psutil.Process]:
        assert self.process is not None
        return psutil.Process(self.process.pid).children()

    def cpu_seconds(self) -> float:
        """User + system CPU time the workers have used so far."""
        return sum(sum(w.cpu_times()[:2]) for w in self.workers())

    def rss_mib(self) -> dict[int, float]:
        return {w.pid: w.memory_info().rss / 2**20 for w in self.workers()}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def deployment_env(folder: Path, database: Database, port: int, args: argparse.Namespace) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "anomaly.settings",
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        # Traefik terminates TLS in production; this talks to gunicorn directly.
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16),
        "DATABASE_URL": database.url,
        "ML_ARTIFACTS_DIR": str(folder / "artifacts"),
        "LOG_DIR": str(folder / "log"),
        "STATIC_ROOT": str(folder / "static"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(args.workers),
    }
    env.pop("REDIS_URL", None)
    if args.redis_url != "none":
        env["REDIS_URL"] = args.redis_url
        env["CACHE_KEY_PREFIX"] = f"bench-load-{uuid.uuid4().hex[:8]}"
    return env


# --- the traffic --------------------------------------------------------------


@dataclass
class Account:
    account_id: str
    location: str
    device_id: str
    ip_address: str
    merchant_id: str
    balance: float


def sample_rows() -> list[dict[str, str]]:
    """The sample's rows as the earlier system's JSON (the API takes its names)."""
    with SAMPLE.open(newline="") as handle:
        return list(csv.DictReader(handle))


def sample_accounts() -> list[Account]:
    last: dict[str, dict[str, str]] = {}
    with SAMPLE.open(newline="") as handle:
        for row in csv.DictReader(handle):
            last[row["AccountID"]] = row
    return [
        Account(
            row["AccountID"],
            row["Location"],
            row["DeviceID"],
            row["IP Address"],
            row["MerchantID"],
            float(row["AccountBalance"]),
        )
        for row in last.values()
    ]


@dataclass
class Sample:
    kind: str
    status: int  # 0: no answer
    ms: float
    accepted: int = 0


@dataclass
class Traffic:
    port: int
    token: str
    accounts: list[Account]
    phase: str
    mix: dict[str, int]
    stored: list[dict[str, str]] = field(default_factory=list)
    start: datetime = datetime(2024, 5, 1, tzinfo=UTC)
    samples: list[list[Sample]] = field(default_factory=list)

    def transaction(self, rng: random.Random, client: int, number: int) -> dict[str, Any]:
        account = rng.choice(self.accounts)
        amount = min(round(rng.lognormvariate(4.0, 0.8), 2), 999_999.0)
        return {
            "transaction_id": f"{ID_PREFIX}{self.phase}{client:02d}{number:07d}",
            "account_id": account.account_id,
            "amount": f"{amount:.2f}",
            "timestamp": (self.start + timedelta(seconds=number * 7 + client)).isoformat(),
            "transaction_type": "Debit",
            "location": account.location,
            "device_id": account.device_id,
            "ip_address": account.ip_address,
            "merchant_id": account.merchant_id,
            "channel": rng.choice(["Online", "ATM", "Branch"]),
            "customer_age": 40,
            "customer_occupation": "Engineer",
            "duration_seconds": rng.randint(20, 200),
            "login_attempts": 1,
            "account_balance": f"{max(account.balance - amount, 0.0):.2f}",
        }

    def client(self, number: int, stop: threading.Event) -> None:
        rng = random.Random(number)
        kinds = [kind for kind, weight in self.mix.items() for _ in range(weight)]
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        samples: list[Sample] = []
        sequence = 0
        while not stop.is_set():
            kind = rng.choice(kinds)
            body = None
            if kind in ("single", "batch_100"):
                size = 1 if kind == "single" else 100
                batch = [self.transaction(rng, number, sequence + i) for i in range(size)]
                sequence += size
                method, path, body = "POST", "/api/predict/", json.dumps(batch).encode()
            elif kind == "repeat":
                row = rng.choice(self.stored)
                method, path, body = "POST", "/api/predict/", json.dumps(row).encode()
            elif kind == "list":
                method, path = "GET", f"/api/transactions/?page={rng.randint(1, 20)}"
            else:
                method, path = (
                    "GET",
                    f"/api/accounts/{rng.choice(self.accounts).account_id}/transactions/",
                )
            started = time.perf_counter()
            try:
                connection.request(method, path, body, headers)
                response = connection.getresponse()
                content = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                status, content = 0, b""
            elapsed = (time.perf_counter() - started) * 1000
            new = status == 200 and kind in ("single", "batch_100")
            accepted = len(json.loads(content)) if new else 0
            samples.append(Sample(kind, status, elapsed, accepted))
        connection.close()
        self.samples.append(samples)

    def run(self, clients: int, seconds: float) -> tuple[list[Sample], float]:
        stop = threading.Event()
        threads = [
            threading.Thread(target=self.client, args=(n, stop), daemon=True)
            for n in range(clients)
        ]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        return [s for samples in self.samples for s in samples], elapsed


# --- the report ----------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


def summary(samples: list[Sample], seconds: float) -> dict[str, Any]:
    latencies = [s.ms for s in samples]
    errors = sum(s.status != 200 for s in samples)
    return {
        "requests": len(samples),
        "requests_per_s": round(len(samples) / seconds, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "errors": errors,
        "error_rate": round(errors / len(samples), 6) if samples else 0.0,
    }


def print_phase(result: dict[str, Any]) -> None:
    print(
        f"\n{result['clients']} clients, {result['seconds']:.0f} s "
        f"({result['workers']} workers, {result['cpus']} CPUs, "
        f"load average {result['load_average_1m']} at the end)"
    )
    columns = ("requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors")
    print(f"  {'':<10} " + " ".join(f"{name:>8}" for name in columns))
    for name, row in [("all", result["overall"]), *result["by_kind"].items()]:
        values = ("requests", "requests_per_s", "p50_ms", "p95_ms", "p99_ms", "errors")
        print(f"  {name:<10} " + " ".join(f"{row[key]:>8}" for key in values))
    print(
        f"  transactions accepted {result['rows_accepted']}, stored {result['rows_stored']}; "
        f"worker RSS {result['rss_start_mib']} -> {result['rss_end_mib']} MiB; "
        f"worker CPU {result['worker_cpu_ms_per_request']} ms per request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="8,32", help="client counts, one run each")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL, without a database name",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"),
        help="Redis for the shared cache, or 'none'",
    )
    parser.add_argument(
        "--mix",
        type=_mix,
        default=MIX,
        help="kinds and weights, e.g. single=1 to measure one kind alone "
        "(default: single=50,batch_100=10,list=25,account=15; also: repeat, "
        "a stored transaction sent again)",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the database and temp folder")
    args = parser.parse_args()
    counts = [int(n) for n in args.clients.split(",")]

    folder = Path(tempfile.mkdtemp(prefix="anomaly-bench-load-"))
    database = Database(args.server)
    port = free_port()
    deployment = Deployment(folder, database, deployment_env(folder, database, port, args), port)
    database.create()
    results: list[dict[str, Any]] = []
    failed = False
    try:
        print(f"database {database.name}; gunicorn with {args.workers} workers on :{port}")
        deployment.prepare()
        deployment.start()
        accounts, rows = sample_accounts(), sample_rows()
        # Warm-up: every worker loads both models and opens its connection.
        Traffic(port, deployment.token, accounts, "W", MIX).run(4, 3.0)
        for index, clients in enumerate(counts):
            rss_start, cpu_start = deployment.rss_mib(), deployment.cpu_seconds()
            traffic = Traffic(port, deployment.token, accounts, str(index), args.mix, rows)
            samples, seconds = traffic.run(clients, args.seconds)
            rss_end, cpu = deployment.rss_mib(), deployment.cpu_seconds() - cpu_start
            # Others' work on the machine shows here: the figures are only
            # comparable between runs on an otherwise idle host.
            load = os.getloadavg()[0]
            stored = database.count(
                "SELECT count(*) FROM detection_transaction WHERE transaction_id LIKE %s",
                f"{ID_PREFIX}{index}%",
            )
            result = {
                "clients": clients,
                "seconds": round(seconds, 1),
                "workers": args.workers,
                "cpus": os.cpu_count(),
                "load_average_1m": round(load, 2),
                "overall": summary(samples, seconds),
                "by_kind": {
                    kind: summary([s for s in samples if s.kind == kind], seconds)
                    for kind in args.mix
                },
                # Unlike latency, CPU time per request hardly depends on what
                # else the machine runs: the workers' own cost, database aside.
                "worker_cpu_ms_per_request": round(cpu * 1000 / max(len(samples), 1), 1),
                "rows_accepted": sum(s.accepted for s in samples),
                "rows_stored": stored,
                "rss_start_mib": round(sum(rss_start.values()), 1),
                "rss_end_mib": round(sum(rss_end.values()), 1),
                "rss_by_worker_mib": {
                    str(pid): [round(rss_start.get(pid, 0), 1), round(mib, 1)]
                    for pid, mib in rss_end.items()
                },
            }
            results.append(result)
            print_phase(result)
            failed |= result["overall"]["errors"] > 0
            failed |= result["rows_accepted"] != result["rows_stored"]
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        deployment.stop()
        if args.keep:
            print(f"kept database {database.name} and {folder}")
        else:
            database.drop()
            shutil.rmtree(folder, ignore_errors=True)
            _redis_forget(deployment.env.get("REDIS_URL"), deployment.env.get("CACHE_KEY_PREFIX"))
    if failed:
        raise SystemExit("errors occurred or stored rows differ from accepted rows")


def _mix(text: str) -> dict[str, int]:
    mix = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind not in KINDS or not weight.isdigit() or int(weight) < 1:
            raise argparse.ArgumentTypeError(
                f"{part!r}: expected KIND=WEIGHT, KIND one of {', '.join(KINDS)}"
            )
        mix[kind] = int(weight)
    return mix


def _redis_forget(url: str | None, prefix: str | None) -> None:
    if not url or not prefix:
        return
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


if __name__ == "__main__":
    main()
