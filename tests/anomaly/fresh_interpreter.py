"""Python code run in a new interpreter from the project root: for what this
test process has long done already (imports, a frozen garbage collector)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def run_fresh(script: str, **environ: str) -> str:
    """``script``'s standard output; the environment is this one's plus
    ``environ``. A failing script fails the test with its output."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout
