"""What a web worker does once, after the application is loaded and before
its first request (gunicorn's ``post_worker_init``)."""

from __future__ import annotations

import gc

from django.db import connections
from django.urls import get_resolver

from detection.registry import detectors_preload


def worker_warm_up() -> None:
    """Load the active models and every view, then freeze the garbage
    collector's view of what is loaded.

    Without the URLconf loaded here, each worker's first request imports the
    views, DRF and drf-spectacular: a second or more.

    ``gc.freeze()`` moves the objects that exist now (Django, scikit-learn,
    the models: about 200,000) out of the collector's reach. They live as
    long as the worker, yet a full collection walked every one of them: about
    190 ms, once every ten batches of 1,000 transactions or so, which made the
    batch's p99 and added 19 ms to its mean. Frozen, a full collection only
    walks what requests allocate (2 ms).
    """
    try:
        detectors_preload()
        get_resolver().url_patterns  # noqa: B018 - the import is the point
    finally:
        # Requests run in the worker's threads, each with its own connection.
        connections.close_all()
    gc.collect()
    gc.freeze()
