"""What a web worker does once, after the application is loaded and before
its first request (gunicorn's ``post_worker_init``)."""

from __future__ import annotations

import gc

from django.db import connections
from django.urls import get_resolver

from detection.registry import detectors_preload


def worker_warm_up(*, young_threshold: int = 0) -> None:
    """Load the active models and every view, then freeze the garbage
    collector's view of what is loaded; with ``young_threshold``, collect the
    youngest generation only after that many new objects instead of 700.

    Without the URLconf loaded here, each worker's first request imports the
    views, DRF and drf-spectacular: a second or more.

    ``gc.freeze()`` moves the objects that exist now (Django, scikit-learn,
    the models: about 200,000) out of the collector's reach. They live as
    long as the worker, yet a full collection walked every one of them: about
    190 ms, once every ten batches of 1,000 transactions or so, which made the
    batch's p99 and added 19 ms to its mean. Frozen, a full collection only
    walks what requests allocate (2 ms).

    A batch of 1,000 transactions allocates some 20,000 objects (a validated
    model, its dict, Decimals and datetimes per item), most alive until the
    answer is sent. At Python's default of 700, about twenty collections per
    request walked them again and again, 2 ms in all; at 20,000 a batch
    mostly runs without one. Whole gunicorn runs, three of each, interleaved
    (medians of 30 batches inside the workers): 59.4, 64.8 and 63.4 ms
    against 60.2, 65.0 and 65.8, and a tenth of the batches slower than 68-82
    ms against 77-101. A single transaction hardly allocates enough to notice.
    """
    try:
        detectors_preload()
        get_resolver().url_patterns  # noqa: B018 - the import is the point
    finally:
        # Requests run in the worker's threads, each with its own connection.
        connections.close_all()
    gc.collect()
    gc.freeze()
    if young_threshold > 0:
        gc.set_threshold(young_threshold, *gc.get_threshold()[1:])
