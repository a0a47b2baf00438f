import os
import sys

from genworker import memory

if sys.platform.startswith("linux") and not memory.is_tuned():
    # glibc reads its tunables at start: start again with them (see genworker.memory).
    os.execve(
        sys.executable,
        [sys.executable, "-m", "genworker", *sys.argv[1:]],
        memory.tuned_environment(),
    )

from genworker.cli import main

sys.exit(main())
