"""gunicorn settings: ``gunicorn -c anomaly/gunicorn_conf.py anomaly.wsgi``.

Every knob comes from the environment through ``anomaly.env``:

* ``PORT`` (8000) and ``HOST`` (0.0.0.0): where the application listens.
* ``WEB_CONCURRENCY`` (2): worker processes; ``GUNICORN_THREADS`` (1): threads
  per worker. One thread means gunicorn's sync worker: scoring is CPU-bound
  Python, so a second thread in a worker only waits for the GIL, and on
  SQLite for the one writer too. Measured with 8 clients on SQLite
  (docs/api.md): 440 req/s with p99 26 ms against 350 req/s with p99 62-74 ms
  for 4 threads; on a local PostgreSQL both gave 195 req/s. More than one
  switches to the gthread worker, which keeps connections alive: worth it
  when the database is across a network. The sync worker reads a request
  from a slow client itself, so Traefik buffers request bodies in front of
  it (``buffer-app`` in deploy/traefik/dynamic/middlewares.yml).
* ``OMP_NUM_THREADS`` (1 unless set): OpenMP threads per worker for
  scikit-learn. The workers already use every core; more OpenMP threads only
  oversubscribe them (LOF on a 1,000-row batch: 275 ms with two, 18 ms with one);
  ``GUNICORN_TIMEOUT`` (30 s); ``GUNICORN_MAX_REQUESTS`` (0 = never): recycle a
  worker after that many requests, with 10 % jitter.
* ``MALLOC_KEEP_MB`` (256; 0 = glibc's defaults): freed memory each worker
  keeps for its next requests instead of handing it back to the system,
  which then faulted every page in again (``anomaly/allocator.py``);
* ``GC_LARGE_REQUEST_BYTES`` (32 KiB; 0 = never): a request with a body this
  large runs without the garbage collector, and the worker collects after
  answering it (``anomaly/collector.py``);
* ``METRICS_PORT`` (0 = off; 9464 in the container image): the master process
  serves the Prometheus exposition of all workers on this port. Prometheus
  scrapes it on the internal network; it is a separate port from the
  application's, so the public proxy cannot route to it, and it needs neither
  Django's ALLOWED_HOSTS nor a free worker to answer.
* ``PROMETHEUS_MULTIPROC_DIR`` (var/prometheus-multiproc; /tmp/prometheus in
  the image): where workers write their metric values.

prometheus_client picks single- or multi-process mode when it is imported, so
the variable must be in the environment before any worker imports it. gunicorn
loads this file in the master before it forks a worker, and workers inherit
the master's environment: setting ``os.environ`` here covers every way of
starting gunicorn (Makefile, Dockerfile, by hand). The master empties the
directory when it starts, so counters restart with the service, and removes a
dead worker's live gauges in ``child_exit``.

Each worker loads the active models and every view as it starts, then
freezes the garbage collector's view of them (``post_worker_init``, see
``anomaly.warmup``): its first request is not the one that pays seconds for
scikit-learn's import and the artifacts' verification, and no later request
pays for the collector walking them. On SQLite it first starts the thread that
checkpoints the write-ahead log (``anomaly/db/sqlite3/checkpoint.py``,
``SQLITE_CHECKPOINT_SECONDS``), so no request's commit waits for that copy.

Logging: no access log (``anomaly.middleware`` logs each request with more
fields); gunicorn's own messages use the application's JSON formatter, taken
from the settings module so that both share one definition.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from anomaly.env import env

BASE_DIR = Path(__file__).resolve().parent.parent

multiproc_dir = env.path("PROMETHEUS_MULTIPROC_DIR", BASE_DIR / "var" / "prometheus-multiproc")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)

bind = [f"{env.str('HOST', '0.0.0.0')}:{env.int('PORT', 8000, minimum=1, maximum=65535)}"]
workers = env.int("WEB_CONCURRENCY", 2, minimum=1)
threads = env.int("GUNICORN_THREADS", 1, minimum=1)
# Before any worker imports numpy / scikit-learn, which read it once.
os.environ.setdefault("OMP_NUM_THREADS", "1")
timeout = env.int("GUNICORN_TIMEOUT", 30, minimum=1)
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = env.int("GUNICORN_KEEPALIVE", 5, minimum=0)
max_requests = env.int("GUNICORN_MAX_REQUESTS", 0, minimum=0)
max_requests_jitter = max_requests // 10
malloc_keep_mb = env.int("MALLOC_KEEP_MB", 256, minimum=0)
gc_large_request_bytes = env.int("GC_LARGE_REQUEST_BYTES", 32 * 1024, minimum=0)
metrics_port = env.int("METRICS_PORT", 0, minimum=0, maximum=65535)
metrics_host = env.str("METRICS_HOST", "0.0.0.0")
# The heartbeat file lives in memory when the system offers it (containers
# often have a slow overlay /tmp).
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None

accesslog = None
# No runtime-management socket: nothing uses it, and it is one less way in.
control_socket_disable = True
errorlog = "-"
_settings = importlib.import_module(env.str("DJANGO_SETTINGS_MODULE") or "anomaly.settings")
logconfig_dict = _settings.LOGGING
loglevel = _settings.LOG_LEVEL.lower()


def on_starting(server: Any) -> None:
    # Values left by a previous run would be added to this run's. Only the
    # metric files go: a mistyped directory must not cost anything else.
    multiproc_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in multiproc_dir.glob("*.db"):
        stale.unlink(missing_ok=True)


def when_ready(server: Any) -> None:
    if not metrics_port:
        return
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(metrics_port, addr=metrics_host, registry=registry)
    server.log.info("metrics of all workers served on %s:%s", metrics_host, metrics_port)


def post_worker_init(worker: Any) -> None:
    # The application is loaded. The allocator keeps freed memory from here on,
    # for the models' arrays too. The log's checkpoints move to a thread before
    # the first connection opens, so that every connection leaves them to it;
    # then the rest warms up before serving.
    from anomaly.allocator import keep_freed_memory
    from anomaly.collector import keep_collection_out_of_large_requests
    from anomaly.db.sqlite3.checkpoint import start_background_checkpoints
    from anomaly.warmup import worker_warm_up

    if keep_freed_memory(malloc_keep_mb * 1024 * 1024):
        worker.log.info("worker %s keeps up to %s MB of freed memory", worker.pid, malloc_keep_mb)
    start_background_checkpoints()
    worker_warm_up()
    if gc_large_request_bytes:
        keep_collection_out_of_large_requests(gc_large_request_bytes)
        worker.log.info(
            "worker %s collects garbage after requests of %s bytes or more, not during them",
            worker.pid,
            gc_large_request_bytes,
        )


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
