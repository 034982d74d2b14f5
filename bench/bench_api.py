"""API speed through gunicorn, as a bank's client sees it.

    uv run python -m bench.bench_api [--accounts 400] [--months 4] [--workers 2]
                                     [--clients 8] [--seconds 10] [--json FILE]

Builds a throw-away SQLite database with generated history, trains both
models, starts gunicorn (the project's ``anomaly/gunicorn_conf.py`` when it
exists, else ``-w N``) on a free local port and measures, with every
transaction stored and scored by both models against its account's last 90
days (transactions arrive as live traffic: after the stored history, one a
second):

* one transaction per request, one client: median and p99 latency;
* batches of 100 and of 1,000 transactions: median and p99;
* N clients in parallel for S seconds: requests/s, median, p99 and errors.

Targets (DESIGN.md, a 2-core machine): single median <= 5 ms; batch of 1,000
<= 60 ms; 8 clients >= 400 requests/s with p99 <= 50 ms and no errors. The
clients are threads of this process, so they share the machine's two cores
with the server, as a load generator on the same host would; they write and
read raw HTTP/1.1 to spare those cores (``Client``).

gunicorn inherits this process's environment (``OMP_NUM_THREADS=1`` to
compare thread settings, for instance); ``BENCH_LOG_LEVEL`` (INFO, as in
production) sets its log level, its logs going to the temp folder.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.machine import interpreter
from bench.setup import django_with_temp_database

BASE_DIR = Path(__file__).resolve().parent.parent
TARGETS = {
    "single_median_ms": 5.0,
    "batch_1000_median_ms": 60.0,
    "concurrent_rps": 400.0,
    "concurrent_p99_ms": 50.0,
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class BadResponse(OSError):
    """An answer that is not HTTP."""


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(1 << 16)
    if not chunk:
        raise BadResponse("the connection closed before the whole answer came")
    return chunk


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise BadResponse(f"an answer without Content-Length: {head[:80]!r}")


class Client:
    """HTTP/1.1 over a plain socket, one connection per request: gunicorn's
    sync worker closes each connection after its answer anyway.

    http.client parsed every answer's headers with the email package: the
    client's CPU per request was 0.35-0.37 ms against 0.19-0.23 here (8
    clients, single transactions, the body built included), taken from the
    two cores the server runs on."""

    def __init__(self, port: int, token: str) -> None:
        self.address = ("127.0.0.1", port)
        self.headers = (
            f"Host: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n"
        )

    def post(self, path: str, body: bytes | None, method: str = "POST") -> tuple[int, bytes, float]:
        """The status, the body and the milliseconds until the whole answer
        (Content-Length bytes) was in: the worker's own work after it, up to
        closing the connection, is not the client's wait."""
        body = body or b""
        request = (
            f"{method} {path} HTTP/1.1\r\n{self.headers}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        started = time.perf_counter()
        with socket.create_connection(self.address, timeout=60) as sock:
            sock.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received:
                received += _recv(sock)
            head, _, content = received.partition(b"\r\n\r\n")
            length = _content_length(head)
            while len(content) < length:
                content += _recv(sock)
            elapsed = (time.perf_counter() - started) * 1000
        status_line = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
            raise BadResponse(f"not an HTTP answer: {head[:80]!r}")
        return int(status_line[1]), content, elapsed

    def close(self) -> None:
        """Nothing stays open between requests."""


class Payloads:
    """New transactions of stored accounts, each with an id never used before,
    arriving as live traffic does: one a second after the stored history ends,
    so each is scored against its account's last 90 days."""

    def __init__(self, templates: list[dict[str, Any]], start: datetime) -> None:
        self.templates = templates
        self.start = start
        self.counter = 0
        self.lock = threading.Lock()

    def next(self, prefix: str) -> dict[str, Any]:
        with self.lock:
            self.counter += 1
            n = self.counter
        payload = dict(self.templates[n % len(self.templates)])
        payload["transaction_id"] = f"{prefix}{n:09d}"
        payload["timestamp"] = (self.start + timedelta(seconds=n)).isoformat()
        return payload

    def body(self, prefix: str, size: int | None = None) -> bytes:
        if size is None:
            return json.dumps(self.next(prefix)).encode()
        return json.dumps([self.next(prefix) for _ in range(size)]).encode()


def request_template(tx: Any) -> dict[str, Any]:
    """A stored transaction as a request's body, but for its id and time
    (``Payloads`` gives each request new ones)."""
    return {
        "account_id": tx.account_id,
        "amount": float(tx.amount),
        "transaction_type": tx.transaction_type,
        "location": tx.location,
        "device_id": tx.device_id,
        "ip_address": tx.ip_address,
        "merchant_id": tx.merchant_id,
        "channel": tx.channel,
        "customer_age": tx.customer_age,
        "customer_occupation": tx.customer_occupation,
        "duration_seconds": tx.duration_seconds,
        "login_attempts": tx.login_attempts,
        "account_balance": float(tx.account_balance),
    }


def stored_history(folder: Path, *, accounts: int, months: int, seed: int = 11) -> datetime:
    """A generated history imported into the database, both models trained on
    it and every stored transaction scored, as train_models leaves a
    database: each one's verdict and merchant novelty are there for requests
    to read. Returns the latest stored time, after which traffic arrives."""
    from detection.importer import import_transactions_csv
    from detection.models import Transaction
    from detection.scoring import stored_transactions_score
    from detection.synthetic import generate
    from detection.training import models_train

    csv_path = folder / "history.csv"
    generate(
        out=csv_path, labels=folder / "labels.csv", accounts=accounts, months=months, seed=seed
    )
    import_transactions_csv(path=csv_path)
    models_train()
    stored_transactions_score()
    return Transaction.objects.order_by("-timestamp").values_list("timestamp", flat=True)[0]


def prepare(folder: Path, accounts: int, months: int) -> tuple[str, Payloads, int]:
    """History, trained models, a user's token and the requests' payloads."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from detection.models import Transaction

    began = time.perf_counter()
    latest = stored_history(folder, accounts=accounts, months=months)
    stored = Transaction.objects.count()
    user = get_user_model().objects.create_user("bench")
    token = Token.objects.create(user=user).key
    # Each request is a new transaction of a real account, like one of its
    # stored ones, so it has the account's history to be scored with.
    templates = [request_template(tx) for tx in Transaction.objects.order_by("?")[:5000]]
    print(
        f"prepared {stored:,} stored and scored transactions of {accounts} accounts "
        f"and both models in {time.perf_counter() - began:.1f} s"
    )
    return token, Payloads(templates, start=latest), stored


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(folder: Path, port: int, workers: int) -> tuple[subprocess.Popen, Path]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="anomaly.settings",
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY=str(workers),
        LOG_DIR=str(folder / "log"),
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        PROMETHEUS_MULTIPROC_DIR=str(folder / "prometheus"),
    )
    conf = BASE_DIR / "anomaly" / "gunicorn_conf.py"
    if conf.exists():
        command = ["gunicorn", "-c", str(conf), "anomaly.wsgi"]
    else:
        command = ["gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "anomaly.wsgi"]
    log = folder / "gunicorn.log"
    process = subprocess.Popen(
        [sys.executable, "-m", *command],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/health/")
            if connection.getresponse().status == 200:
                return process, log
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 60 s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def sequential(
    client: Client, make_body: Callable[[], bytes], count: int, expect_items: int
) -> list[float]:
    latencies = []
    for _ in range(count):
        body = make_body()
        status, content, ms = client.post("/api/predict/", body)
        if status != 200:
            raise SystemExit(f"HTTP {status}: {content[:500]!r}")
        items = json.loads(content)
        if len(items) != expect_items or not all(item["stored"] for item in items):
            raise SystemExit(f"unexpected answer: {content[:500]!r}")
        latencies.append(ms)
    return latencies


def floor(client: Client, path: str, count: int) -> list[float]:
    """GETs that score nothing: what the server, middleware and DRF cost alone."""
    latencies = []
    for _ in range(count):
        status, content, ms = client.post(path, None, method="GET")
        if status != 200:
            raise SystemExit(f"HTTP {status}: {content[:500]!r}")
        latencies.append(ms)
    return latencies


def concurrent(
    port: int, token: str, payloads: Payloads, clients: int, seconds: float
) -> dict[str, Any]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def run(index: int) -> None:
        client = Client(port, token)
        start.wait()
        while time.perf_counter() < deadline[0]:
            body = payloads.body(f"TXC{index}")
            try:
                status, content, ms = client.post("/api/predict/", body)
            except OSError as exc:
                errors.append(repr(exc))
                continue
            if status != 200:
                errors.append(f"HTTP {status}: {content[:200]!r}")
            latencies[index].append(ms)
        client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    deadline.append(time.perf_counter() + seconds)
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = [ms for per_client in latencies for ms in per_client]
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(every),
        "requests_per_second": round(len(every) / elapsed, 1),
        "median_ms": round(percentile(every, 50), 2),
        "p99_ms": round(percentile(every, 99), 2),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "requests": len(latencies),
        "median_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report(results: dict[str, Any]) -> Iterator[str]:
    for name, label in (("health", "GET /api/health/  "), ("models", "GET /api/models/  ")):
        row = results[name]
        yield f"{label}   median {row['median_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms"
    single, b100, b1000, conc = (
        results["single"],
        results["batch_100"],
        results["batch_1000"],
        results["concurrent"],
    )
    yield (
        f"single transaction   median {single['median_ms']:7.2f} ms  p99 {single['p99_ms']:7.2f} ms"
        f"   target median <= 5 ms: "
        f"{_verdict(single['median_ms'] <= TARGETS['single_median_ms'])}"
    )
    yield f"batch of 100         median {b100['median_ms']:7.2f} ms  p99 {b100['p99_ms']:7.2f} ms"
    yield (
        f"batch of 1,000       median {b1000['median_ms']:7.2f} ms  p99 {b1000['p99_ms']:7.2f} ms"
        f"   target <= 60 ms: "
        f"{_verdict(b1000['median_ms'] <= TARGETS['batch_1000_median_ms'])}"
    )
    conc_ok = (
        conc["requests_per_second"] >= TARGETS["concurrent_rps"]
        and conc["p99_ms"] <= TARGETS["concurrent_p99_ms"]
        and conc["errors"] == 0
    )
    yield (
        f"{conc['clients']} clients, {conc['seconds']:.0f} s    "
        f"{conc['requests_per_second']:7.1f} req/s  median {conc['median_ms']:.2f} ms  "
        f"p99 {conc['p99_ms']:.2f} ms  errors {conc['errors']}"
        f"   target >= 400 req/s, p99 <= 50 ms, no errors: {_verdict(conc_ok)}"
    )
    for error in conc["first_errors"]:
        yield f"  error: {error}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--months", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--single", type=int, default=500, help="single-transaction requests")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    folder = django_with_temp_database("api")
    process = None
    try:
        token, payloads, history = prepare(folder, args.accounts, args.months)
        from django.db import connection

        connection.close()  # the server's workers have the database to themselves
        port = free_port()
        process, _ = start_gunicorn(folder, port, args.workers)
        client = Client(port, token)
        # Every worker loads and verifies the artifacts on its first request.
        sequential(client, lambda: payloads.body("TXW"), 50, 1)

        results: dict[str, Any] = {
            "workers": args.workers,
            "stored_history": history,
            # No scoring: the cost of gunicorn, the middleware and DRF (with a
            # token lookup and one query for the models list).
            "health": summary(floor(client, "/api/health/", 300)),
            "models": summary(floor(client, "/api/models/", 300)),
            "single": summary(sequential(client, lambda: payloads.body("TXS"), args.single, 1)),
            "batch_100": summary(sequential(client, lambda: payloads.body("TXB", 100), 40, 100)),
            "batch_1000": summary(sequential(client, lambda: payloads.body("TXK", 1000), 15, 1000)),
        }
        client.close()
        results["concurrent"] = concurrent(port, token, payloads, args.clients, args.seconds)

        from detection.models import Transaction

        stored = Transaction.objects.count() - history
        expected = payloads.counter - results["concurrent"]["errors"]
        database = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(
            connection.vendor, connection.vendor
        )
        print(
            f"gunicorn on {interpreter()}, {args.workers} workers, {database}, {history:,} "
            "stored transactions; every "
            f"request stored and scored by both models ({stored:,} new rows for "
            f"{expected:,} transactions sent)"
        )
        for line in report(results):
            print(line)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
