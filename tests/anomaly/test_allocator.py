"""The allocator keeps freed memory: numpy's arrays of a few hundred KB come
back without the kernel faulting their pages in again."""

from __future__ import annotations

import pytest

from anomaly.allocator import keep_freed_memory
from tests.anomaly.fresh_interpreter import run_fresh

# Forty arrays of 320 KB at a time, as a request's steps allocate them, freed
# and allocated again; the page faults of the later rounds are printed.
CHURN = """
import resource, sys
import numpy as np
from anomaly.allocator import keep_freed_memory

if sys.argv[1:] == ["keep"]:
    assert keep_freed_memory(256 * 1024 * 1024)

def churn():
    arrays = [np.ones(40_000) for _ in range(40)]
    del arrays

churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(*args: str) -> int:
    script = "import sys; sys.argv[1:] = " + repr(list(args)) + "\n" + CHURN
    return int(run_fresh(script).strip())


def test_freed_memory_is_kept_instead_of_faulted_in_again():
    kept, default = faults("keep"), faults()
    # glibc's defaults give each round's 3,200 pages back and fault them in
    # again; kept, the rounds reuse them.
    assert default > 20 * 1_000
    assert kept < default / 20


def test_zero_keeps_glibc_defaults():
    assert keep_freed_memory(0) is False


@pytest.mark.parametrize("keep", [1, 2**40])
def test_any_positive_amount_is_taken(keep):
    # Larger than a C int: capped, not an overflow in the call. In a fresh
    # interpreter, so that this test process keeps glibc's defaults.
    script = f"from anomaly.allocator import keep_freed_memory; print(keep_freed_memory({keep}))"
    assert run_fresh(script).strip() == "True"
