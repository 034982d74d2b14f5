"""What a benchmark's figures were measured on: the machine's speed and the
Python that ran them, printed with every run."""

from __future__ import annotations

import os
import platform
import sys
import time


def machine_speed() -> float:
    """Seconds this machine, with this Python, takes for a fixed pure-Python
    loop (the median of three): the same code's figures differ by 2-3x
    between 2-core machines, and between hours on a shared one, so every run
    states its yardstick."""
    timings = []
    for _ in range(3):
        began = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        timings.append(time.perf_counter() - began)
    return sorted(timings)[1]


def interpreter() -> str:
    """Which CPython runs the benchmarks: the same code scores in-process
    about 7 % faster on a build with profile-guided and link-time
    optimisation (the container image's python:3.11-slim, Debian's python3)
    than on one without (pyenv's default build), and answers through
    gunicorn 10-25 % faster; README, Speed."""
    where = os.path.realpath(sys.executable)
    return f"{platform.python_implementation()} {platform.python_version()}, {where}"
