"""Keep the memory a process frees for its next use, instead of handing it
back to the system page by page.

By default glibc's malloc serves a block above its mmap threshold (128 KB at
first, raised as such blocks are freed) with a fresh mapping, and gives the
top of its heap back once more than twice that lies free. numpy allocates
and frees arrays of hundreds of KB at every step of a request, so each of
them came back as new pages, and the kernel faulted and zeroed every page
again on first touch: 1,500-2,800 page faults per batch of 1,000
transactions, against about 360 with the memory kept (in-process,
docs/api.md, Speed). The features of such a batch took 10.4 ms against 6.7.

Fixing both thresholds turns glibc's own adjustment off: blocks below
``MMAP_THRESHOLD`` (the highest the dynamic threshold ever goes) come from
the heap, and up to ``keep_bytes`` of free heap stays with the process. The
cost is that a worker's resident memory stays at its high-water mark.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

# mallopt() parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems.
MMAP_THRESHOLD = 32 * 1024 * 1024


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    # Only glibc has mallopt with these meanings (musl has none at all).
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc


def keep_freed_memory(keep_bytes: int) -> bool:
    """Let this process keep up to ``keep_bytes`` of freed memory, and serve
    blocks up to ``MMAP_THRESHOLD`` from its heap. Whether it took effect:
    False without glibc, or for 0 (glibc's defaults stay)."""
    libc = _libc()
    if keep_bytes <= 0 or libc is None:
        return False
    keep = min(keep_bytes, 2**31 - 1)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, keep)
    )
