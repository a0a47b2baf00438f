"""What keeping freed memory (``GLIBC_TUNABLES``, see :mod:`genworker.memory`) saves: each
case timed in two fresh processes, with glibc's default malloc thresholds (the baseline) and
with the raised ones.

Cases (CPU; what the workers and the evaluation do):
- ``regressor-128``: two epochs of the evaluation's severity regressor on a 128² brain
  cohort (200 subjects' training split), on one thread as ``evaluate`` runs it;
- ``sample-128``: the speed benchmark's same-config generator at 128², four batches of 16;
- ``train-64``: steps of the brain CPU recipe's training at 64² (what ``train`` runs).

Prints wall, user and kernel (sys) seconds, minor page faults, the process's peak resident
memory (what the kept memory costs) and the speed-up.

    python bench/malloc_reuse.py                 # all cases, about 5 minutes on 2 cores
    python bench/malloc_reuse.py --cases sample-128
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COHORT_SEED = 2026
TRAIN_STEPS = 30


def _regressor_128() -> None:
    import torch

    from genworker.cohorts.registry import build_cohort
    from genworker.features import train_feature_net

    cohort = build_cohort("brain-glioma", resolution=128, n_subjects=200, seed=COHORT_SEED)
    torch.set_num_threads(1)
    _timed(lambda: train_feature_net(cohort.train(), epochs=2, seed=1, width=24))


def _sample_128() -> None:
    import numpy as np

    from genworker.networks import GeneratorConfig, build_generator

    findings = ("normal", "glioma", "nodule", "effusion")
    generator = build_generator(GeneratorConfig(resolution=128, findings=findings)).eval()
    generator.requires_grad_(False)
    cond = generator.schema.encode("glioma", np.full(16, 0.5), 60.0, "F")
    generator.sample(cond, seed=0)  # warm-up
    _timed(lambda: [generator.sample(cond, seed=seed) for seed in range(4)])


def _train_64() -> None:
    from genworker.cohorts.registry import build_cohort
    from genworker.recipes import recipe
    from genworker.training import train

    chosen = recipe("brain-glioma", "cpu")
    cohort = build_cohort(
        chosen.cohort, resolution=chosen.resolution, n_subjects=chosen.subjects, seed=COHORT_SEED
    )
    with tempfile.TemporaryDirectory() as out:
        _timed(
            lambda: train(
                cohort,
                config=chosen.config(cohort.findings),
                out_dir=out,
                steps=TRAIN_STEPS,
                progress=False,
                **chosen.train_options(),
            )
        )


CASES = {"regressor-128": _regressor_128, "sample-128": _sample_128, "train-64": _train_64}


def _timed(work) -> None:
    """Run ``work`` and print its wall, user and sys seconds and page faults as JSON."""
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    work()
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
    print(
        json.dumps(
            {
                "wall": wall,
                "user": after.ru_utime - before.ru_utime,
                "sys": after.ru_stime - before.ru_stime,
                "faults": after.ru_minflt - before.ru_minflt,
                "peak_mib": after.ru_maxrss / 1024,  # the whole process's, cohort included
            }
        )
    )


def _measure(case: str, keep: bool) -> dict:
    from genworker.memory import tuned_environment

    env = tuned_environment() if keep else {**os.environ, "GLIBC_TUNABLES": ""}
    command = [sys.executable, __file__, "--child", case]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        CASES[args.child]()
        return
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {sorted(CASES)}")
    print(f"{os.cpu_count()} CPUs; each case in a fresh process, default malloc first")
    print(
        f"{'case':<15}{'malloc':<10}{'wall s':>8}{'user s':>8}{'sys s':>8}{'faults':>10}"
        f"{'peak MiB':>10}"
    )
    for case in cases:
        rows = {keep: _measure(case, keep) for keep in (False, True)}
        for keep, row in rows.items():
            print(
                f"{case:<15}{'kept' if keep else 'default':<10}{row['wall']:>8.1f}"
                f"{row['user']:>8.1f}{row['sys']:>8.1f}{row['faults']:>10}{row['peak_mib']:>10.0f}"
            )
        print(f"{case:<15}speed-up x{rows[False]['wall'] / rows[True]['wall']:.2f}")


if __name__ == "__main__":
    main()
