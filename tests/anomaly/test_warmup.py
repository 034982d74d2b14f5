"""A worker's warm-up, in a fresh interpreter as a new gunicorn worker is:
this one has long imported everything, and freezing its collector would
change every test after this one."""

from __future__ import annotations

import json
from pathlib import Path

from tests.anomaly.fresh_interpreter import run_fresh


def _warm_up_worker(tmp_path: Path) -> dict:
    script = (
        "import gc, json, sys, django; django.setup();"
        "from anomaly.warmup import worker_warm_up;"
        "before = gc.get_freeze_count();"
        "worker_warm_up();"
        "from django.db import connections;"
        "print(json.dumps({'before': before, 'frozen': gc.get_freeze_count(),"
        " 'views': 'detection.api.predict' in sys.modules,"
        " 'open': [c.alias for c in connections.all() if c.connection is not None]}))"
    )
    output = run_fresh(
        script,
        DJANGO_SETTINGS_MODULE="anomaly.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        ML_ARTIFACTS_DIR=str(tmp_path / "artifacts"),
        LOG_DIR=str(tmp_path / "log"),
        PYTHONWARNINGS="ignore",
    )
    return json.loads(output.strip().splitlines()[-1])


def test_it_loads_the_views_freezes_what_is_loaded_and_closes_connections(tmp_path):
    # An empty database (no tables even): the warm-up must not stop a worker
    # from starting; the first request reports what is missing instead.
    outcome = _warm_up_worker(tmp_path)

    assert outcome["views"]
    assert outcome["before"] == 0
    # Django, DRF and NumPy alone are well over 50,000 objects.
    assert outcome["frozen"] > 50_000
    assert outcome["open"] == []
