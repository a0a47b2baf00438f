"""Keep freed tensor memory in the process for the next allocation: glibc's malloc, tuned
through ``GLIBC_TUNABLES``.

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

glibc reads ``GLIBC_TUNABLES`` once, when a process starts, so it is set in the environment
of the processes that run networks on the CPU: the workers' image (Dockerfile,
docker-compose.yml), the demo's worker (``bin/run-demo``), the engine's CLI (``python -m
genworker`` starts again with it) and the processes the engine spawns (:func:`tuned`).
Elsewhere (musl, macOS) the variable does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

MMAP_THRESHOLD_BYTES = 256 << 20  # allocations below this come from the heap
TRIM_THRESHOLD_BYTES = 1 << 30  # free memory at the heap's top kept up to this
TUNABLES = {
    "glibc.malloc.mmap_threshold": str(MMAP_THRESHOLD_BYTES),
    "glibc.malloc.trim_threshold": str(TRIM_THRESHOLD_BYTES),
}


def with_tunables(value: str | None) -> str:
    """``GLIBC_TUNABLES`` with the thresholds above; other tunables in ``value`` are kept."""
    entries = dict(entry.split("=", 1) for entry in (value or "").split(":") if "=" in entry)
    entries.update(TUNABLES)
    return ":".join(f"{name}={setting}" for name, setting in entries.items())


def tuned_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default: this process's) for a process that keeps freed memory."""
    env = dict(os.environ if env is None else env)
    env["GLIBC_TUNABLES"] = with_tunables(env.get("GLIBC_TUNABLES"))
    return env


def is_tuned(env: Mapping[str, str] | None = None) -> bool:
    """Whether a process started with ``env`` (default: this one) keeps freed memory."""
    value = (os.environ if env is None else env).get("GLIBC_TUNABLES", "")
    entries = dict(entry.split("=", 1) for entry in value.split(":") if "=" in entry)
    return all(entries.get(name) == setting for name, setting in TUNABLES.items())


@contextmanager
def tuned() -> Iterator[None]:
    """Processes started inside (``multiprocessing`` spawn) keep freed memory."""
    before = os.environ.get("GLIBC_TUNABLES")
    os.environ["GLIBC_TUNABLES"] = with_tunables(before)
    try:
        yield
    finally:
        if before is None:
            del os.environ["GLIBC_TUNABLES"]
        else:
            os.environ["GLIBC_TUNABLES"] = before
