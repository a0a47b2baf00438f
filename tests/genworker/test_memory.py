"""GLIBC_TUNABLES from genworker.memory: a large tensor freed and allocated again, once the
heap has settled, is served from the heap, not from freshly faulted-in kernel pages. Each case
runs in its own process (glibc reads the tunables when a process starts)."""

import json
import os
import subprocess
import sys

import pytest

from genworker import memory

ALLOCATE_AND_FREE = """
import json, resource
import torch
for _ in range(10):  # the heap settles: the first freed blocks are a little short for
    torch.empty(16 << 20).fill_(1)  # torch's aligned 64 MiB, over glibc's mmap threshold
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.empty(16 << 20).fill_(1)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults}))
"""


def _faults(env: dict[str, str]) -> int:
    output = subprocess.run(
        [sys.executable, "-c", ALLOCATE_AND_FREE], check=True, capture_output=True, text=True,
        env=env,
    )  # fmt: skip
    return json.loads(output.stdout)["faults"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's tunables")
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    default = _faults({**os.environ, "GLIBC_TUNABLES": ""})
    kept = _faults(memory.tuned_environment())
    pages = 10 * (64 << 20) // 4096
    assert default > pages / 2  # each allocation mapped and touched anew
    assert kept < pages / 20


def test_other_tunables_are_kept_and_ours_recognised():
    env = memory.tuned_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert env["GLIBC_TUNABLES"].startswith("glibc.malloc.arena_max=2:")
    assert memory.is_tuned(env)
    assert not memory.is_tuned({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert not memory.is_tuned({})


def test_processes_started_inside_tuned_get_the_tunables(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    with memory.tuned():
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.environ['GLIBC_TUNABLES'])"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    assert memory.is_tuned({"GLIBC_TUNABLES": child.stdout.strip()})
    assert "GLIBC_TUNABLES" not in os.environ
