"""End-to-end time of one generation job of N cases on the CPU, and where it goes.

Runs ``cases.generation.worker.run_generation_job`` in this process (the worker's own code path,
without a broker) against a throwaway SQLite database and media folder, on a registered
checkpoint: ``--checkpoint``, else the first shipped ``genworker/models/*.pt``, else the
tiny test generator (32², image + mask, random weights). Prints the job's wall time and
the shares recorded in ``GenerationJob.timings``: loading the generator, the generator
(progression series), DICOM writing (image and SEG objects to bytes) and storage (files
saved, rows committed in one transaction); "other" is the rest of the wall time (claiming
the job, progress updates, finishing). With ``--writers N``, DICOM and storage run on N
writer threads beside the generator, as in a worker, and the stages overlap instead.

    python bench/job_time.py                       # 4 cases of 5 timepoints
    python bench/job_time.py --cases 10 --timepoints 10 --jobs 2
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import benchmark_template_version  # noqa: E402
from genworker.checkpoint import shipped_generators  # noqa: E402

STAGES = ("load", "generator", "dicom", "storage")


def configure_django(folder: Path, threads: int | None, writers: int) -> None:
    """Point Django at a database and media folder under ``folder``, then set it up."""
    os.environ["GANTRY_WRITER_THREADS"] = str(writers)
    os.environ["GANTRY_VAR_DIR"] = str(folder)
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(folder / "media")
    os.environ["GANTRY_WORKER_CACHE_DIR"] = str(folder / "cache")
    os.environ["GANTRY_DEVICE"] = "cpu"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))  # a throwaway database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gantry.settings")
    import django
    import torch

    if threads:
        torch.set_num_threads(threads)
    django.setup()
    from django.core.management import call_command

    from gantry.local import make_local_folders

    make_local_folders()  # the SQLite file's folder, where used
    call_command("migrate", verbosity=0, interactive=False)


def default_checkpoint(folder: Path) -> Path:
    shipped = shipped_generators(ROOT / "genworker" / "models")
    if shipped:
        return shipped[0]
    from tests.tiny_generator import write_tiny_checkpoint

    return write_tiny_checkpoint(folder)


def run_job(version, n_cases: int, seed: int) -> tuple[float, float, dict[str, float], int]:
    """Run one job in this process; -> (wall seconds, CPU seconds, its timings, DICOM files).

    CPU seconds count every thread of this process: on a machine shared with other work
    they show what the job cost where the wall time also shows waiting for a core."""
    from cases.generation.worker import run_generation_job
    from cases.models import GenerationJob, Instance

    job = GenerationJob.objects.create(
        template_version=version, requested_by=version.created_by, n_cases=n_cases, seed=seed
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    run_generation_job(job_pk=job.pk)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    job.refresh_from_db()
    if job.status != GenerationJob.Status.SUCCEEDED:
        sys.exit(f"the job failed: {job.error}")
    files = Instance.objects.filter(series__study__patient__job=job).count()
    return wall, cpu, job.timings, files


def print_job(
    number: int, wall: float, cpu: float, timings: dict[str, float], files: int, args
) -> None:
    images = args.cases * args.timepoints
    print(
        f"\njob {number}: {args.cases} cases x {args.timepoints} timepoints = {images} images, "
        f"{files} DICOM files; wall {wall:.2f} s = {wall / args.cases:.2f} s per case "
        f"(process CPU {cpu:.2f} s)"
    )
    print(f"  {'stage':<10}{'seconds':>9}{'share':>8}{'per case':>10}")
    other = wall - sum(timings.get(stage, 0.0) for stage in STAGES)
    rows = [(stage, timings.get(stage, 0.0)) for stage in STAGES]
    for stage, seconds in rows if args.writers else [*rows, ("other", other)]:
        print(f"  {stage:<10}{seconds:>9.3f}{seconds / wall:>8.1%}{seconds / args.cases:>10.3f}")
    if args.writers:
        print(f"  (on {args.writers} writer threads the stages overlap; they sum to {-other:.3f} s")
        print("   more than the wall time, and the wall time includes the rest)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a generator .pt with its .card.json")
    parser.add_argument("--cases", type=int, default=4, help="cases per job (default 4)")
    parser.add_argument("--timepoints", type=int, default=5, help="studies per case, 1-20")
    parser.add_argument("--method", choices=("condition", "direction"), default="condition")
    parser.add_argument("--jobs", type=int, default=1, help="jobs in a row; later ones are warm")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--writers", type=int, default=0, help="writer threads (default 0: stages in turn)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as tmp:
        folder = Path(tmp)
        configure_django(folder, args.threads, args.writers)
        import torch

        checkpoint = args.checkpoint or default_checkpoint(folder)
        version = benchmark_template_version(
            checkpoint, timepoints=args.timepoints, method=args.method
        )
        generator = version.generator
        print(
            f"{checkpoint.name}: {generator.architecture} {generator.resolution}², "
            f"finding {version.finding!r}, {args.method} progression, truncation "
            f"{version.truncation}; CPU, {torch.get_num_threads()} torch threads, SQLite"
        )
        for number in range(1, args.jobs + 1):
            print_job(number, *run_job(version, args.cases, seed=number), args)


if __name__ == "__main__":
    main()
