"""Run every benchmark: each ``bench/bench_*.py`` module's ``main()`` in a
process of its own (each sets up Django against its own temp database), one
after another, their output as they print it.

    uv run python -m bench            # all of them
    uv run python -m bench api import # only bench_api and bench_import
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.machine import interpreter, machine_speed

FOLDER = Path(__file__).resolve().parent


def main() -> None:
    print(f"== machine: a 10-million-step Python loop takes {machine_speed():.2f} s", flush=True)
    print(f"== python: {interpreter()}", flush=True)
    available = sorted(path.stem for path in FOLDER.glob("bench_*.py"))
    wanted = [name if name.startswith("bench_") else f"bench_{name}" for name in sys.argv[1:]]
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise SystemExit(f"no benchmark {', '.join(unknown)}; there are {', '.join(available)}")
    failed = []
    for name in wanted or available:
        print(f"== {name}", flush=True)
        began = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=FOLDER.parent)
        print(f"-- {name}: {time.perf_counter() - began:.0f} s", flush=True)
        if result.returncode:
            failed.append(name)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
