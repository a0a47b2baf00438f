"""Scale-out: one generation job on one worker, then on more, through a broker and a database.

By default through services: a throwaway PostgreSQL database (``--db``, dropped and
re-created) and Redis database ``--redis-db`` (flushed). ``--database sqlite`` takes an
SQLite file instead, ``--broker filesystem`` Celery's filesystem broker (polled every 0.1 s),
both in the benchmark's temporary folder; ``--embedded`` is both, as in ``make demo`` on a
machine without services. Registers a shipped generator (``--checkpoint``, else the first
``genworker/models/*.pt``) and one template, and starts real ``celery worker`` processes (solo
pool, ``-Q gpu``, ``GANTRY_CHUNK_CASES`` cases per chunk) on ``--device``: on the CPU with one
torch thread each and batches of 8 images, on CUDA with torch's default threads and batches
of 256 (a worker's defaults on each). For each worker count in ``--workers`` (default 1, then
2) it runs a warm-up job (each worker loads the generator), then the measured job of
``--cases`` cases, timed from enqueueing to the job's success. A job not finished within
``--timeout`` seconds, or a worker that exits, ends the benchmark with the job's progress and
the tails of the worker logs (the temporary folder goes with the benchmark); the rows
measured before it stay printed.

Each worker writes cases on ``--writers`` threads while it samples the next batch (see
``genworker.writers``); the one-worker job also runs with none, cases written one after
another in the sampling thread, as the baseline of that overlap.

Prints cases/s and images/s per worker count, where the workers' time went per image (the
generator, DICOM, storage, the rest: see ``measure``), and the ratio of each count to one,
and, in the same run, the raw generator's images/s (synthesis alone, in this process, on
the workers' device at their batch size, one thread on the CPU) against the end-to-end
images/s of the workers: what the pipeline (patient, DICOM, storage, rows, broker) costs
per image. Workers on one machine stand in for hosts; with two CPU cores, other load on
the machine shows in the ratio.

    python bench/scale_out.py                    # 200 cases of 3 timepoints, chunks of 8
    python bench/scale_out.py --cases 60 --chunk 4
    python bench/scale_out.py --embedded --device cuda --timeout 300   # no services, a GPU
    python bench/scale_out.py --broker filesystem --device cuda --workers 1,2,4,8  # PostgreSQL
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
from genworker.checkpoint import default_max_batch, shipped_generators  # noqa: E402

DATABASES = {"postgres": "PostgreSQL", "sqlite": "SQLite"}
BROKERS = {"redis": "Redis broker", "filesystem": "filesystem broker"}
STAGES = ("generator", "dicom", "storage")  # of a job's timings


def configure(folder: Path, args: argparse.Namespace) -> dict[str, str]:
    """A fresh database and broker; the environment the workers share with us."""
    env = {
        **(sqlite(folder) if args.database == "sqlite" else postgres(args.db)),
        **(filesystem_broker() if args.broker == "filesystem" else redis_broker(args.redis_db)),
        "MEDIA_ROOT": str(folder / "media"),
        "GANTRY_VAR_DIR": str(folder),
        "GANTRY_DEVICE": args.device,
        "GANTRY_TORCH_THREADS": "1" if args.device == "cpu" else "0",
        "GANTRY_BATCH_IMAGES": str(default_max_batch(args.device)),
        "GANTRY_CHUNK_CASES": str(args.chunk),
        "GANTRY_COMPILE_GENERATOR": "1" if args.compile else "0",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "gantry.settings",
    }
    setup_django(env)
    return env


def postgres(name: str) -> dict[str, str]:
    """A dropped and re-created PostgreSQL database (on 127.0.0.1:5432)."""
    return {"DATABASE_URL": fresh_postgres(name)}


def sqlite(folder: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{folder / 'gantry.sqlite3'}"}


def redis_broker(db: int) -> dict[str, str]:
    """A flushed Redis database (on 127.0.0.1:6379)."""
    import redis

    broker = f"redis://127.0.0.1:6379/{db}"
    redis.Redis.from_url(broker).flushdb()
    return {"CELERY_BROKER_URL": broker}


def filesystem_broker() -> dict[str, str]:
    """Celery's filesystem broker, whose folders settings put under GANTRY_VAR_DIR."""
    return {"CELERY_BROKER_URL": "filesystem://"}


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


def stop_workers(workers: list[subprocess.Popen]) -> None:
    """Terminate the workers; kill those still running after 10 s (a warm shutdown waits for
    the task in hand, which a job that timed out may not finish)."""
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + 10
    for worker in workers:
        try:
            worker.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def worker_log_tails(folder: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of every worker log that has any."""
    tails = []
    for log in sorted(folder.glob("bench*.log")):
        if text := log.read_text(errors="replace").splitlines()[-lines:]:
            tails.append("\n".join([f"--- {log.name}", *text]))
    return "\n".join(tails)


def run_job(
    version, n_cases: int, seed: int, *, workers: list[subprocess.Popen], timeout: float
) -> tuple[float, dict[str, float]]:
    """Seconds from enqueueing the job to its success, and the job's stage timings (its
    chunks' sums); exits when the job fails, when a worker exits, or when the job has run
    ``timeout`` seconds."""
    from cases.models import GenerationJob

    job = GenerationJob.objects.create(
        template_version=version, requested_by=version.created_by, n_cases=n_cases, seed=seed
    )
    started = time.perf_counter()
    job.enqueue()
    while not job.is_finished:
        waited = time.perf_counter() - started
        exited = [worker.pid for worker in workers if worker.poll() is not None]
        if waited > timeout or exited:
            why = f"worker pid {exited[0]} exited" if exited else "timed out"
            sys.exit(
                f"job {job.pk} ({n_cases} cases, seed {seed}, {len(workers)} workers) {why} "
                f"after {waited:.0f} s: {job.status}, {job.done} of {n_cases} cases done"
            )
        time.sleep(0.05)
        job.refresh_from_db()
    elapsed = time.perf_counter() - started
    if job.status != GenerationJob.Status.SUCCEEDED:
        sys.exit(f"the job failed: {job.error}")
    if job.cases.count() != n_cases:
        sys.exit(f"the job made {job.cases.count()} cases, not {n_cases}")
    return elapsed, job.timings


def measure(
    version, env: dict[str, str], folder: Path, args: argparse.Namespace
) -> dict[tuple[int, int], float]:
    """Seconds of the measured job by (workers, writer threads per worker), each after a
    warm-up job in which every worker loads the generator; each printed as it is measured,
    so that a run that fails at a larger count keeps the smaller ones.

    Beside each, where the workers' time went, in milliseconds per image summed over the
    workers: the generator (mapping and synthesis), DICOM writing and storage (files and
    rows), from the job's timings, and "rest", the workers' wall time (workers x seconds)
    that none of the three accounts for: waiting for the broker, claiming chunks, progress.
    A stage that grows with the worker count is contended; with writer threads, DICOM and
    storage overlap the generator, so the stages may sum to more than the wall time."""
    print(
        f"\n  {'workers':<9}{'writers':>8}{'seconds':>9}{'cases/s':>9}{'images/s':>10}"
        f"   ms per image: {'generator':>9}{'DICOM':>7}{'storage':>8}{'rest':>7}"
    )
    images = args.cases * args.timepoints
    seconds = {}
    runs = [(1, 0), (1, args.writers)] + [(count, args.writers) for count in args.workers[1:]]
    for count, writers in runs:
        workers = start_workers(count, writers, env, folder)
        try:
            watch = {"workers": workers, "timeout": args.timeout}
            run_job(version, args.chunk * count, seed=100 + count, **watch)  # every worker loads
            elapsed, timings = run_job(version, args.cases, seed=count, **watch)
            seconds[count, writers] = elapsed
            stages = [1000 * timings.get(stage, 0.0) / images for stage in STAGES]
            rest = 1000 * count * elapsed / images - sum(stages)
            print(
                f"  {count:<9}{writers:>8}{elapsed:>9.2f}{args.cases / elapsed:>9.2f}"
                f"{images / elapsed:>10.1f}{'':>17}{stages[0]:>9.3f}{stages[1]:>7.3f}"
                f"{stages[2]:>8.3f}{rest:>7.3f}",
                flush=True,
            )
        finally:
            stop_workers(workers)
    return seconds


def raw_generator_images_per_second(
    checkpoint: Path, device: str, batch: int, images: int, *, compiled: bool
) -> float:
    """Synthesis alone (mapping done beforehand) on ``device``, one thread on the CPU, slices
    of ``batch`` images; compiled as the workers' is with ``compiled``. CUDA runs
    asynchronously, so the clock starts and stops with the device synchronized."""
    import torch

    from genworker.checkpoint import load_generator
    from genworker.networks import z_from_seed

    if device == "cpu":
        torch.set_num_threads(1)
    synchronize = torch.cuda.synchronize if device == "cuda" else lambda: None
    loaded = load_generator(checkpoint, device=device)
    loaded.max_batch = batch
    if compiled:
        loaded.compile()
    generator, synthesis = loaded.generator, loaded.synthesis
    z = torch.from_numpy(z_from_seed(1, images, generator.z_dim)).to(device)
    finding = generator.schema.findings[-1]
    severity = torch.rand(images).numpy()
    cond = torch.from_numpy(generator.schema.encode(finding, severity, 55, "F")).to(device)
    with torch.no_grad():
        ws = generator.mapping(z, cond, 0.7)
        synthesis(ws[:batch])  # warm-up
        synchronize()
        started = time.perf_counter()
        for start in range(0, images, batch):
            synthesis(ws[start : start + batch])
        synchronize()
        return images / (time.perf_counter() - started)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a generator .pt with its .card.json")
    parser.add_argument("--cases", type=int, default=200, help="cases in the measured job")
    parser.add_argument("--timepoints", type=int, default=3, help="studies per case")
    parser.add_argument("--chunk", type=int, default=8, help="cases per chunk (default 8)")
    parser.add_argument("--writers", type=int, default=2, help="writer threads per worker")
    parser.add_argument(
        "--workers",
        type=worker_counts,
        default="1,2",
        help="worker counts to measure, comma-separated, from 1 (default 1,2)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="workers compile the generator (and raw does)"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="the workers' GANTRY_DEVICE (default cpu)",
    )
    parser.add_argument(
        "--database",
        choices=DATABASES,
        default="postgres",
        help="PostgreSQL on 127.0.0.1:5432 (default) or an SQLite file",
    )
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default="redis",
        help="Redis on 127.0.0.1:6379 (default) or Celery's filesystem broker",
    )
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="SQLite and the filesystem broker, no services (as make demo)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds a job may run (default 600)"
    )
    parser.add_argument("--db", default="gantry_bench_scale_out", help="PostgreSQL database")
    parser.add_argument("--redis-db", type=int, default=14)
    args = parser.parse_args(argv)
    if args.embedded:
        args.database, args.broker = "sqlite", "filesystem"
    return args


def worker_counts(text: str) -> list[int]:
    """``--workers``: distinct counts, ascending, the first 1 (the others are compared with
    it)."""
    try:
        counts = sorted({int(count) for count in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated whole numbers: {text!r}") from None
    if counts[0] != 1:
        raise argparse.ArgumentTypeError(f"must start from 1 and count up, not {text!r}")
    return counts


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    checkpoint = args.checkpoint or shipped_generators(ROOT / "genworker" / "models")[0]
    # A worker's batch: its default, or one chunk's images where a lone job has fewer.
    batch = min(default_max_batch(args.device), args.chunk * args.timepoints)
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as tmp:
        folder = Path(tmp)
        env = configure(folder, args)
        version = benchmark_template_version(checkpoint, timepoints=args.timepoints)
        images = args.cases * args.timepoints
        threads = "one torch thread" if args.device == "cpu" else "torch's default threads"
        print(
            f"{checkpoint.name} ({version.generator.architecture} "
            f"{version.generator.resolution}²): {args.cases} cases x {args.timepoints} "
            f"timepoints = {images} images, chunks of {args.chunk} cases, {args.device} "
            f"workers with {threads} each and batches of {batch} images, "
            f"{DATABASES[args.database]} + {BROKERS[args.broker]}, "
            f"{os.cpu_count()} cores"
        )
        try:
            seconds = measure(version, env, folder, args)
        except SystemExit:
            print(worker_log_tails(folder), file=sys.stderr)
            raise
        raw = raw_generator_images_per_second(
            checkpoint,
            args.device,
            batch,
            batch * min(max(images // batch, 4), 30),  # whole batches, 4 to 30 of them
            compiled=args.compile,
        )
    one = seconds[1, args.writers]
    print(f"\n  writer threads, one worker: {seconds[1, 0] / one:.2f}x the cases/s of none")
    for count in args.workers[1:]:
        rate = images / seconds[count, args.writers]
        print(
            f"  {count} workers vs one: {one / seconds[count, args.writers]:.2f}x; end to end"
            f" {rate:.1f} images/s ({rate / raw:.2f}x raw)"
        )
    print(
        f"  raw generator (synthesis only{', compiled' if args.compile else ''}, "
        f"{args.device}{', 1 thread' if args.device == 'cpu' else ''}, batch {batch}): "
        f"{raw:.1f} images/s; one worker"
        f" end to end {images / seconds[1, 0]:.1f} images/s without writer threads"
        f" ({images / seconds[1, 0] / raw:.2f}x raw), {images / one:.1f} with"
        f" ({images / one / raw:.2f}x raw)"
    )


if __name__ == "__main__":
    main()
