"""Start Django for a benchmark against its own throw-away database."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def django_with_temp_database(name: str) -> Path:
    """Point DATABASE_URL and ML_ARTIFACTS_DIR at a fresh temp folder, set up
    Django and migrate. Must run before anything imports Django settings."""
    folder = Path(tempfile.mkdtemp(prefix=f"anomaly-bench-{name}-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anomaly.settings")
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or (
        f"sqlite:///{folder / 'bench.sqlite3'}"
    )
    os.environ["ML_ARTIFACTS_DIR"] = str(folder / "artifacts")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return folder
