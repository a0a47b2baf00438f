"""How a worker runs generation: chunks of a job claimed under a lease, sampled in shared
generator batches, and their cases committed (:mod:`cases.generation.persistence`).

A GenerationJob runs as chunks of consecutive cases, one ``generate_chunk`` task each on the
``gpu`` queue (:mod:`cases.tasks`), so that several GPU workers share a big job. Everything is
idempotent: a case whose (job, case index) exists is skipped, every case is committed whole
(files first under a per-attempt folder, then the rows of a generator batch's cases in one
transaction, files removed again if that fails), and a chunk is held under a lease (see
``cases.models.GenerationChunk``): a repeated delivery of a finished chunk does nothing, one
of a chunk a live worker holds waits and asks again, and one of a chunk whose worker died
takes it over.

A worker fills its generator batches: the cases of its chunk, and when there is room, queued
chunks of other jobs on the same generator, sample together. Writer threads
(``GANTRY_WRITER_THREADS``, see :mod:`genworker.writers`) store one batch's cases while the
next batch samples. The engine (:mod:`genworker`) does the sampling and the DICOM; this
module is where it meets the database.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time as clock
import uuid
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import connections

from cases.generation.persistence import commit_case, commit_cases, sweep_unreferenced_files
from cases.models import (
    GenerationChunk,
    GenerationJob,
    GeneratorModel,
    TemplateVersion,
)
from genworker import sampling
from genworker.patients import PatientRecipe
from genworker.pipeline import (
    CasePlan,
    CaseRequest,
    GeneratedCase,
    plan_case,
    write_case,
    write_twin,
)
from genworker.sampling import progression_batch
from genworker.stylegan.directions import with_directions
from genworker.writers import Writers

logger = logging.getLogger(__name__)
SOFTWARE_VERSION = f"gantry {settings.GANTRY_VERSION}"  # in each file's Software Versions
RETRY_AT_MOST_S = 30  # a task waiting on another worker's lease asks again this often
# A worker writes its jobs' progress and renews its leases at most this often (and when its
# chunks end): each is a commit of its own, which on PostgreSQL waits for the disk, and the
# CPU workers' batches of 8 images come faster than that.
RECORD_EVERY_S = 0.5


def torch_device() -> str:
    """The device generators run on; also applies GANTRY_TORCH_THREADS to this process."""
    import torch

    if settings.GANTRY_TORCH_THREADS > 0:
        torch.set_num_threads(settings.GANTRY_TORCH_THREADS)
    if settings.GANTRY_DEVICE != "auto":
        return settings.GANTRY_DEVICE
    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=4)
def _load_cached(sha256: str, path: str, device: str):  # -> LoadedGenerator
    from genworker.checkpoint import default_max_batch
    from genworker.loading import load_model

    loaded = load_model(Path(path), device=device)
    if loaded.sha256 != sha256:
        raise ValueError(
            f"checkpoint {Path(path).name} has sha256 {loaded.sha256[:12]}…, "
            f"the registry expects {sha256[:12]}…"
        )
    loaded.max_batch = settings.GANTRY_BATCH_IMAGES or default_max_batch(device)
    if settings.GANTRY_COMPILE_GENERATOR:
        loaded.compile()
    return loaded


def load_generator_for(model: GeneratorModel, device: str):  # -> LoadedGenerator
    """The generator of ``model``, loaded once per worker process (keyed by sha256); an
    unconditional imported model with the directions it was taught on the site."""
    cached = Path(settings.GANTRY_WORKER_CACHE_DIR) / f"{model.sha256}.pt"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{uuid.uuid4().hex}.part")
        with model.checkpoint.open("rb") as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        partial.replace(cached)
    loaded = _load_cached(model.sha256, str(cached), device)
    if model.needs_taught_directions:
        loaded = with_directions(loaded, model.approved_directions())
    return loaded


def case_request(job: GenerationJob, case_index: int) -> CaseRequest:
    """What the worker makes for one case of ``job``: the version's recipe, with the job's
    difficulty dial (severity scale, truncation) applied."""
    version: TemplateVersion = job.template_version
    recipe = version.patient_recipe_dict()
    for key in ("severity_from", "severity_to"):
        if key in recipe:
            recipe[key] = recipe[key] * job.severity_scale
    return CaseRequest(
        job_uid=str(job.uid),
        job_seed=job.seed,
        case_index=case_index,
        title=version.title,
        finding=version.finding,
        modality=version.modality,
        truncation=version.truncation if job.truncation is None else job.truncation,
        method=version.progression["method"],
        recipe=PatientRecipe.from_dict(recipe),
        start_date=job.created_at.date(),
        side=version.side or None,
        location=version.location or None,
    )


def run_generation_job(*, job_pk: int) -> None:
    """Every chunk of the job in this process, without a broker (demo content, tests, benches)."""
    job = GenerationJob.objects.get(pk=job_pk)
    for chunk in job.plan_chunks():
        run_chunk(job_pk=job_pk, chunk_index=chunk.index, worker=hostname())


def run_chunk(*, job_pk: int, chunk_index: int, worker: str) -> float | None:
    """Run one chunk (and companions that fit its batches); the seconds to wait before
    asking again when another live worker holds it, else None."""
    chunk = GenerationChunk.objects.select_related("job__template_version__generator").get(
        job_id=job_pk, index=chunk_index
    )
    job = chunk.job
    if job.is_finished or chunk.status in (chunk.Status.DONE, chunk.Status.FAILED):
        job.finish_if_complete()
        return None
    if not chunk.claim(worker=worker):
        logger.info("%s is leased by %s; asking again later", chunk, chunk.worker)
        return chunk.seconds_until_lease_ends() + 1
    device = torch_device()
    if _start_job_of(chunk, worker=worker, device=device):
        _ChunkRun(worker=worker, device=device, first=chunk).run()
    return None


def _start_job_of(chunk: GenerationChunk, *, worker: str, device: str) -> bool:
    """Mark a claimed chunk's job running; False (and the chunk failed) when the job
    finished meanwhile, which only a failure elsewhere in it can do."""
    if chunk.job.mark_running(worker=worker, device=device):
        return True
    chunk.end(status=GenerationChunk.Status.FAILED, timings={})
    return False


@dataclass
class _Work:
    chunk: GenerationChunk
    plan: CasePlan


# One case's sampled series and, when its job asks for twins, its normal twin's.
_Sampled = tuple[_Work, sampling.Series, sampling.Series | None]

# What became of one case a writer was given: its timings (committed, or committed by another
# delivery), the exception that failed it, or None (not written: its job failed or its chunk
# was taken over before its turn came).
_Outcome = dict[str, float] | Exception | None


class _ChunkRun:
    """The claimed chunks of one task, sampled and committed in shared batches.

    A failure in one case fails that case's job (with the case named) and nothing else; a
    failure of the generator fails the jobs whose cases were in the batch.
    """

    def __init__(self, *, worker: str, device: str, first: GenerationChunk) -> None:
        self.worker = worker
        self.device = device
        self.chunks = [first]
        self.failed_jobs: set[int] = set()
        self.failing_jobs: set[int] = set()  # a case failed in a writer; not yet recorded
        self.lost_chunks: set[int] = set()  # leases another worker took over
        # Committed to since progress was last recorded, by primary key; and when it was.
        self.unrecorded: dict[int, GenerationChunk] = {}
        self.recorded_at = clock.monotonic()
        self.timings = {first.pk: {"generator": 0.0, "dicom": 0.0, "storage": 0.0, "load": 0.0}}

    def run(self) -> None:
        first = self.chunks[0]
        started = clock.perf_counter()
        try:
            self.loaded = load_generator_for(first.job.template_version.generator, self.device)
        except Exception as exc:
            self._fail(first.job, f"{type(exc).__name__}: {exc}")
            return
        self.timings[first.pk]["load"] = clock.perf_counter() - started
        work = self._work_of(first)
        self._add_companions(room=self.loaded.max_batch - _images(work))
        for chunk in self.chunks[1:]:
            work += self._work_of(chunk)
        # While one batch's cases are written, the next batch samples; no further ahead, so
        # at most two batches of images are held.
        writing: deque[Future] = deque()
        with Writers(settings.GANTRY_WRITER_THREADS, on_exit=connections.close_all) as writers:
            for batch in _batches(work, self.loaded.max_batch):
                writing.append(writers.submit(self._write, self._sample(batch)))
                if len(writing) > 1:
                    self._settle(writing.popleft())
            while writing:
                self._settle(writing.popleft())
        self._record_progress()
        self._end_chunks()

    def _work_of(self, chunk: GenerationChunk) -> list[_Work]:
        job = chunk.job
        existing = set(job.cases.cases().values_list("case_index", flat=True))
        z_dim = self.loaded.z_dim
        return [
            _Work(chunk, plan_case(case_request(job, index), z_dim=z_dim))
            for index in chunk.case_indexes
            if index not in existing
        ]

    def _add_companions(self, *, room: int) -> None:
        """Queued chunks of other jobs (or this one) on the same generator, while they fit."""
        first = self.chunks[0]
        candidates = (
            GenerationChunk.objects.filter(
                status=GenerationChunk.Status.QUEUED,
                job__template_version__generator=first.job.template_version.generator,
                job__status__in=(GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING),
            )
            .exclude(pk=first.pk)
            .select_related("job__template_version")
            .order_by("job__created_at", "index")
        )
        for chunk in candidates[:32]:
            images = chunk.n_cases * _images_per_case(chunk.job)
            if images > room:
                break
            if chunk.claim(worker=self.worker) and _start_job_of(
                chunk, worker=self.worker, device=self.device
            ):
                self.chunks.append(chunk)
                self.timings[chunk.pk] = {"generator": 0.0, "dicom": 0.0, "storage": 0.0}
                room -= images
        if len(self.chunks) > 1:
            logger.info("batching %s with %d more chunks", first, len(self.chunks) - 1)

    def _sample(self, batch: list[_Work]) -> list[_Sampled]:
        """The batch's series, each with its case (and its twin's series, for jobs that ask
        for twins); none when the generator failed.

        Twins sample after their cases, from the identity each case was made from (a latent
        model may draw another z when its first plans fail)."""
        self._notice_jobs_failed_elsewhere()
        batch = [item for item in batch if self._still_ours(item.chunk)]
        if not batch:
            return []
        started = clock.perf_counter()
        try:
            series = progression_batch(self.loaded, [item.plan.series_spec() for item in batch])
            twins = self._sample_twins(batch, series)
        except Exception as exc:
            for job in {item.chunk.job.pk: item.chunk.job for item in batch}.values():
                indexes = [i.plan.request.case_index for i in batch if i.chunk.job == job]
                where = f"cases {min(indexes) + 1}-{max(indexes) + 1} of {job.n_cases}"
                self._fail(job, f"{where}: {type(exc).__name__}: {exc}")
            return []
        share = (clock.perf_counter() - started) / len(batch)
        for item in batch:
            self.timings[item.chunk.pk]["generator"] += share
        return list(zip(batch, series, twins, strict=True))

    def _sample_twins(
        self, batch: list[_Work], series: list[sampling.Series]
    ) -> list[sampling.Series | None]:
        """The normal twin's series of each case whose job asks for twins, else None."""
        twins: list[sampling.Series | None] = [None] * len(batch)
        twinned = [i for i, item in enumerate(batch) if item.chunk.job.with_twins]
        if twinned:
            specs = [batch[i].plan.twin_spec(_identity(batch[i], series[i])) for i in twinned]
            for i, twin in zip(twinned, progression_batch(self.loaded, specs), strict=True):
                twins[i] = twin
        return twins

    def _write(self, sampled: list[_Sampled]) -> list[tuple[_Work, _Outcome]]:
        """In a writer thread: the DICOM of each case of one batch, then the files and rows of
        them all in one transaction; case by case if that fails, to tell the case that failed
        (or that another delivery committed) from the others. Returns each case's outcome."""
        outcomes: list[_Outcome] = [None] * len(sampled)
        cases: list[tuple[int, GeneratedCase]] = []
        for position, (item, series, twin) in enumerate(sampled):
            if not self._still_ours(item.chunk):
                continue
            try:
                case = write_case(self.loaded, item.plan, series, software_version=SOFTWARE_VERSION)
                if twin is not None:
                    case.twin = write_twin(
                        self.loaded, item.plan, twin, software_version=SOFTWARE_VERSION
                    )
            except Exception as exc:
                outcomes[position] = self._failing(item, exc)
                continue
            outcomes[position] = {"dicom": case.timings["dicom"]}
            cases.append((position, case))
        started = clock.perf_counter()
        try:
            commit_cases([(sampled[position][0].chunk.job, case) for position, case in cases])
        except Exception:
            self._commit_each(sampled, cases, outcomes)
        storage = (clock.perf_counter() - started) / max(len(cases), 1)
        for position, _ in cases:
            if isinstance(outcomes[position], dict):
                outcomes[position]["storage"] = storage
        return list(zip((item for item, _, _ in sampled), outcomes, strict=True))

    def _commit_each(
        self,
        sampled: list[_Sampled],
        cases: list[tuple[int, GeneratedCase]],
        outcomes: list[_Outcome],
    ) -> None:
        """Commit ``cases`` one at a time, in order, recording the outcome of each."""
        for position, case in cases:
            item = sampled[position][0]
            if not self._still_ours(item.chunk):  # a case of its job before it failed
                outcomes[position] = None
                continue
            try:
                commit_case(item.chunk.job, case)
            except Exception as exc:
                outcomes[position] = self._failing(item, exc)

    def _failing(self, item: _Work, exc: Exception) -> Exception:
        """A case failed in a writer: its job's later cases are not even started."""
        self.failing_jobs.add(item.chunk.job_id)
        return exc

    def _settle(self, written: Future) -> None:
        """Wait for one batch's cases; fail the job of a case that failed; record progress
        and renew leases when they are due (see RECORD_EVERY_S)."""
        committed: list[_Work] = []
        for item, outcome in written.result():
            job, index = item.chunk.job, item.plan.request.case_index
            if isinstance(outcome, Exception):
                logger.error("job %s failed", job.pk, exc_info=outcome)
                if job.pk not in self.failed_jobs:
                    self._fail(
                        job,
                        f"case {index + 1} of {job.n_cases}: {type(outcome).__name__}: {outcome}",
                    )
                continue
            if outcome is None:
                continue
            for key, seconds in outcome.items():
                self.timings[item.chunk.pk][key] += seconds
            committed.append(item)
        self.unrecorded.update((item.chunk.pk, item.chunk) for item in committed)
        if clock.monotonic() - self.recorded_at >= RECORD_EVERY_S:
            self._record_progress()

    def _record_progress(self) -> None:
        """Record the progress of the jobs committed to, and renew those chunks' leases."""
        chunks, self.unrecorded = list(self.unrecorded.values()), {}
        self.recorded_at = clock.monotonic()
        for job in {chunk.job.pk: chunk.job for chunk in chunks}.values():
            job.record_progress()
        for chunk in chunks:
            if self._still_ours(chunk) and not chunk.renew():
                logger.warning("%s was taken over by another worker", chunk)
                self.lost_chunks.add(chunk.pk)

    def _still_ours(self, chunk: GenerationChunk) -> bool:
        return (
            chunk.job_id not in self.failed_jobs
            and chunk.job_id not in self.failing_jobs
            and chunk.pk not in self.lost_chunks
        )

    def _notice_jobs_failed_elsewhere(self) -> None:
        """Stop working for a job another worker's chunk has failed."""
        active = {chunk.job_id for chunk in self.chunks} - self.failed_jobs
        for job_pk in GenerationJob.objects.filter(
            pk__in=active, status=GenerationJob.Status.FAILED
        ).values_list("pk", flat=True):
            self._end_chunks_of(job_pk, GenerationChunk.Status.FAILED)

    def _fail(self, job: GenerationJob, error: str) -> None:
        self._end_chunks_of(job.pk, GenerationChunk.Status.FAILED)
        job.finish(error=error)

    def _end_chunks_of(self, job_pk: int, status: str) -> None:
        self.failed_jobs.add(job_pk)
        for chunk in self.chunks:
            if chunk.job_id == job_pk and chunk.pk not in self.lost_chunks:
                chunk.end(status=status, timings=self.timings[chunk.pk])

    def _end_chunks(self) -> None:
        for chunk in self.chunks:
            if not self._still_ours(chunk):
                continue
            chunk.end(status=GenerationChunk.Status.DONE, timings=self.timings[chunk.pk])
            job = chunk.job
            if job.finish_if_complete() and job.status == GenerationJob.Status.SUCCEEDED:
                sweep_unreferenced_files(job)


def _identity(item: _Work, series: sampling.Series):  # -> np.ndarray float32 [z_dim]
    """The z a case was made from: its plan's, unless the generator drew another."""
    return item.plan.z if series.z is None else series.z


def _images_per_case(job: GenerationJob) -> int:
    """Images one case of ``job`` takes in a batch (twice as many with its twin)."""
    timepoints = PatientRecipe.from_dict(job.template_version.patient_recipe_dict()).timepoints
    return timepoints * (2 if job.with_twins else 1)


def _images(work: list[_Work]) -> int:
    return sum(_case_images(item) for item in work)


def _case_images(item: _Work) -> int:
    return len(item.plan.timeline) * (2 if item.chunk.job.with_twins else 1)


def _batches(work: list[_Work], max_images: int) -> list[list[_Work]]:
    """Consecutive runs of whole cases with at most ``max_images`` images (at least one case)."""
    batches: list[list[_Work]] = []
    for item in work:
        if batches and _images(batches[-1]) + _case_images(item) <= max_images:
            batches[-1].append(item)
        else:
            batches.append([item])
    return batches


def hostname() -> str:
    return socket.gethostname()
