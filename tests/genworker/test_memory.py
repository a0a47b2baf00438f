"""keep_freed_memory: a large tensor freed and allocated again, once the heap has settled,
is served from the heap, not from freshly faulted-in kernel pages. Each case runs in its
own process (the thresholds cannot be put back, and the test process must not depend on
its own history)."""

import json
import subprocess
import sys

import pytest

ALLOCATE_AND_FREE = """
import json, resource, sys
import torch
from genworker.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
for _ in range(10):  # the heap settles: the first freed blocks are a little short for
    torch.empty(16 << 20).fill_(1)  # torch's aligned 64 MiB, over glibc's mmap threshold
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.empty(16 << 20).fill_(1)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"kept": kept, "faults": faults}))
"""


def _run(mode: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", ALLOCATE_AND_FREE, mode],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(output.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    default, kept = _run("default"), _run("keep")

    assert kept["kept"] is True
    pages = 10 * (64 << 20) // 4096
    assert default["faults"] > pages / 2  # each allocation mapped and touched anew
    assert kept["faults"] < pages / 20
