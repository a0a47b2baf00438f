"""Keep freed tensor memory in the process for the next allocation (glibc's malloc).

glibc serves an allocation above its mmap threshold with fresh pages from the kernel and
unmaps them on free; the threshold adapts upward to 32 MiB at most. The activations of a
128² network on the CPU are larger than that (a batch of 32 at width 24 is 50 MB), so every
step mapped new pages that the kernel faulted in and zeroed: training the evaluation's
severity regressor at 128² spent a third of its time in the kernel, and sampling batches of
16 at 128² took 1.4 times as long as it needed (``bench/malloc_reuse.py`` measures both). A
fixed, high mmap threshold and trim threshold keep those buffers in malloc's heap for the
next step instead. The cost is memory: the process keeps what it freed, and its heap grows
for a few steps before freed blocks fit torch's aligned requests (the sampling case peaked
1.4 times higher).

Call :func:`keep_freed_memory` once at the start of a process that runs networks on the
CPU: the genworker CLI, the evaluation's worker processes, a Celery worker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 256 << 20  # allocations below this come from the heap
TRIM_THRESHOLD_BYTES = 1 << 30  # free memory at the heap's top kept up to this


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds in this process; False where that is not
    possible (not Linux, not glibc, or glibc refused), and nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
