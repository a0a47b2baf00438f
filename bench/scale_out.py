"""Scale-out: one generation job on one worker, then on two, through Redis and PostgreSQL.

Sets up a throwaway PostgreSQL database (``--db``, dropped and re-created) and Redis
database ``--redis-db`` (flushed), registers a shipped generator (``--checkpoint``, else the
first ``genworker/models/*.pt``) and one template, and starts real ``celery worker``
processes (solo pool, ``-Q gpu``, one torch thread each, ``GANTRY_CHUNK_CASES`` cases per
chunk). For 1 and then 2 workers it runs a warm-up job (each worker loads the generator),
then the measured job of ``--cases`` cases, timed from enqueueing to the job's success.

Each worker writes cases on ``--writers`` threads while it samples the next batch (see
``genworker.writers``); the one-worker job also runs with none, cases written one after
another in the sampling thread, as the baseline of that overlap.

Prints cases/s and images/s per worker count and the ratio of two workers to one, and, in
the same run, the raw generator's images/s (synthesis alone, in this process, one thread, at
the workers' batch size) against the end-to-end images/s of one worker: what the pipeline
(patient, DICOM, storage, rows, broker) costs per image. Two workers on one machine stand in
for two hosts; with two CPU cores, other load on the machine shows in the ratio.

    python bench/scale_out.py                    # 200 cases of 3 timepoints, chunks of 8
    python bench/scale_out.py --cases 60 --chunk 4
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import benchmark_template_version, fresh_postgres, setup_django  # noqa: E402


def configure(folder: Path, args: argparse.Namespace) -> dict[str, str]:
    """A fresh database and Redis database; the environment the workers share with us."""
    import redis

    broker = f"redis://127.0.0.1:6379/{args.redis_db}"
    redis.Redis.from_url(broker).flushdb()
    env = {
        "DATABASE_URL": fresh_postgres(args.db),
        "CELERY_BROKER_URL": broker,
        "MEDIA_ROOT": str(folder / "media"),
        "GANTRY_VAR_DIR": str(folder),
        "GANTRY_DEVICE": "cpu",
        "GANTRY_TORCH_THREADS": "1",
        "GANTRY_CHUNK_CASES": str(args.chunk),
        "GANTRY_COMPILE_GENERATOR": "1" if args.compile else "0",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "gantry.settings",
    }
    setup_django(env)
    return env


def start_workers(
    count: int, writers: int, env: dict[str, str], folder: Path
) -> list[subprocess.Popen]:
    command = "-m celery -A gantry worker -Q gpu -c 1 -P solo --prefetch-multiplier 1 -l warning"
    env = {
        **os.environ,
        **env,
        "GANTRY_WORKER_CACHE_DIR": str(folder / "cache"),
        "GANTRY_WRITER_THREADS": str(writers),
    }
    workers = []
    for number in range(count):
        name = f"bench{count}w{writers}-{number}"
        log = (folder / f"{name}.log").open("w")
        workers.append(
            subprocess.Popen(
                [sys.executable, *command.split(), "-n", f"{name}@%h"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return workers


def run_job(version, n_cases: int, seed: int) -> float:
    """Seconds from enqueueing the job to its success."""
    from cases.models import GenerationJob

    job = GenerationJob.objects.create(
        template_version=version, requested_by=version.created_by, n_cases=n_cases, seed=seed
    )
    started = time.perf_counter()
    job.enqueue()
    while not job.is_finished:
        time.sleep(0.05)
        job.refresh_from_db()
    elapsed = time.perf_counter() - started
    if job.status != GenerationJob.Status.SUCCEEDED:
        sys.exit(f"the job failed: {job.error}")
    if job.cases.count() != n_cases:
        sys.exit(f"the job made {job.cases.count()} cases, not {n_cases}")
    return elapsed


def raw_generator_images_per_second(
    checkpoint: Path, batch: int, images: int, *, compiled: bool
) -> float:
    """Synthesis alone (mapping done beforehand), one thread, slices of ``batch`` images;
    compiled as the workers' is with ``compiled``."""
    import torch

    from genworker.checkpoint import load_generator
    from genworker.networks import z_from_seed

    torch.set_num_threads(1)
    loaded = load_generator(checkpoint, device="cpu")
    loaded.max_batch = batch
    if compiled:
        loaded.compile()
    generator, synthesis = loaded.generator, loaded.synthesis
    z = torch.from_numpy(z_from_seed(1, images, generator.z_dim))
    finding = generator.schema.findings[-1]
    cond = torch.from_numpy(generator.schema.encode(finding, torch.rand(images).numpy(), 55, "F"))
    with torch.no_grad():
        ws = generator.mapping(z, cond, 0.7)
        synthesis(ws[:batch])  # warm-up
        started = time.perf_counter()
        for start in range(0, images, batch):
            synthesis(ws[start : start + batch])
        return images / (time.perf_counter() - started)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a generator .pt with its .card.json")
    parser.add_argument("--cases", type=int, default=200, help="cases in the measured job")
    parser.add_argument("--timepoints", type=int, default=3, help="studies per case")
    parser.add_argument("--chunk", type=int, default=8, help="cases per chunk (default 8)")
    parser.add_argument("--writers", type=int, default=2, help="writer threads per worker")
    parser.add_argument(
        "--compile", action="store_true", help="workers compile the generator (and raw does)"
    )
    parser.add_argument("--db", default="gantry_bench_scale_out")
    parser.add_argument("--redis-db", type=int, default=14)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    checkpoint = args.checkpoint or sorted((ROOT / "genworker" / "models").glob("*.pt"))[0]
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as tmp:
        folder = Path(tmp)
        env = configure(folder, args)
        version = benchmark_template_version(checkpoint, timepoints=args.timepoints)
        images = args.cases * args.timepoints
        print(
            f"{checkpoint.name} ({version.generator.architecture} "
            f"{version.generator.resolution}²): {args.cases} cases x {args.timepoints} "
            f"timepoints = {images} images, chunks of {args.chunk} cases, CPU workers with "
            f"one torch thread each, Redis + PostgreSQL, {os.cpu_count()} cores"
        )
        runs = [(1, 0), (1, args.writers), (2, args.writers)]  # (workers, writer threads)
        seconds = {}
        for count, writers in runs:
            workers = start_workers(count, writers, env, folder)
            try:
                run_job(version, args.chunk * count, seed=100 + count)  # every worker loads
                seconds[count, writers] = run_job(version, args.cases, seed=count)
            finally:
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    worker.wait(timeout=60)
        raw = raw_generator_images_per_second(
            checkpoint, batch=8, images=min(images, 240), compiled=args.compile
        )
    one = seconds[1, args.writers]
    print(f"\n  {'workers':<9}{'writers':>8}{'seconds':>9}{'cases/s':>9}{'images/s':>10}")
    for (count, writers), elapsed in seconds.items():
        print(
            f"  {count:<9}{writers:>8}{elapsed:>9.2f}{args.cases / elapsed:>9.2f}"
            f"{images / elapsed:>10.1f}"
        )
    print(
        f"\n  writer threads, one worker: {seconds[1, 0] / one:.2f}x the cases/s of none"
        f"\n  two workers vs one: {one / seconds[2, args.writers]:.2f}x"
        f"\n  raw generator (synthesis only{', compiled' if args.compile else ''}, 1 thread,"
        f" batch 8): {raw:.1f} images/s; one worker"
        f" end to end {images / seconds[1, 0]:.1f} images/s without writer threads"
        f" ({images / seconds[1, 0] / raw:.2f}x raw), {images / one:.1f} with"
        f" ({images / one / raw:.2f}x raw)"
    )


if __name__ == "__main__":
    main()
