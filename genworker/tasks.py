"""Celery tasks: the only part of genworker that knows Django and the apps.

``generate_cases`` runs one GenerationJob on the ``gpu`` queue. It is idempotent: a case
whose (job, case index) already exists is skipped, every case is committed whole (files
first under a per-attempt folder, then all rows in one transaction, files removed again if
that fails), and a repeated delivery of a finished job does nothing.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time as clock
import traceback
import uuid
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Task
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from cases.models import (
    GenerationJob,
    GeneratorModel,
    Instance,
    LesionGroundTruth,
    Series,
    Study,
    SyntheticPatient,
    TemplateVersion,
)
from gantry.celery import app
from genworker.patients import PatientRecipe
from genworker.pipeline import CaseRequest, GeneratedCase, generate_case

logger = logging.getLogger(__name__)
SOFTWARE_VERSION = "gantry 0.1.0"


def gpu_task(func: Callable[..., Any]) -> Task:
    """A task for the ``gpu`` queue: acknowledged after it finishes, so a worker that dies
    mid-job hands the job to the next worker, which resumes it (cases are idempotent).
    Budget: one generation job, minutes to an hour; one task per GPU at a time."""
    return app.task(func, queue="gpu", acks_late=True, reject_on_worker_lost=True)


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
    from genworker.checkpoint import load_generator

    loaded = load_generator(Path(path), device=device)
    if loaded.sha256 != sha256:
        raise ValueError(
            f"checkpoint {Path(path).name} has sha256 {loaded.sha256[:12]}…, "
            f"the registry expects {sha256[:12]}…"
        )
    return loaded


def load_generator_for(model: GeneratorModel, device: str):  # -> LoadedGenerator
    """The generator of ``model``, loaded once per worker process (keyed by sha256)."""
    cached = Path(settings.GANTRY_WORKER_CACHE_DIR) / f"{model.sha256}.pt"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{uuid.uuid4().hex}.part")
        with model.checkpoint.open("rb") as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        partial.replace(cached)
    return _load_cached(model.sha256, str(cached), device)


def case_request(job: GenerationJob, case_index: int) -> CaseRequest:
    version: TemplateVersion = job.template_version
    return CaseRequest(
        job_uid=str(job.uid),
        job_seed=job.seed,
        case_index=case_index,
        title=version.title,
        finding=version.finding,
        modality=version.modality,
        truncation=version.truncation,
        method=version.progression["method"],
        recipe=PatientRecipe.from_dict(version.patient_recipe_dict()),
        start_date=job.created_at.date(),
    )


@gpu_task
def generate_cases(*, job_pk: int) -> None:
    run_generation_job(job_pk=job_pk)


def run_generation_job(*, job_pk: int) -> None:
    """Generate every missing case of the job; mark it succeeded, or failed with the reason."""
    job = GenerationJob.objects.select_related("template_version__generator").get(pk=job_pk)
    device = torch_device()
    if not job.mark_running(worker=socket.gethostname(), device=device):
        logger.info("job %s is already finished; nothing to do", job_pk)
        return
    timings = {"generator": 0.0, "dicom": 0.0, "storage": 0.0, "load": 0.0}
    case_index = None
    try:
        started = clock.perf_counter()
        loaded = load_generator_for(job.template_version.generator, device)
        timings["load"] = clock.perf_counter() - started
        existing = set(job.cases.values_list("case_index", flat=True))
        for case_index in range(job.n_cases):
            if case_index in existing:
                continue
            case = generate_case(
                loaded, case_request(job, case_index), software_version=SOFTWARE_VERSION
            )
            timings["generator"] += case.timings["generator"]
            timings["dicom"] += case.timings["dicom"]
            started = clock.perf_counter()
            commit_case(job, case)
            timings["storage"] += clock.perf_counter() - started
            job.record_progress()
    except Exception as exc:
        where = f"case {case_index + 1} of {job.n_cases}: " if case_index is not None else ""
        logger.error("job %s failed\n%s", job_pk, traceback.format_exc())
        job.finish(error=f"{where}{type(exc).__name__}: {exc}", timings=timings)
        return
    job.finish(timings=timings)


def commit_case(job: GenerationJob, case: GeneratedCase) -> SyntheticPatient | None:
    """Store the case's files, then create all its rows in one transaction.

    Files go under a folder unique to this attempt, so two deliveries of the same task never
    overwrite each other's files; whichever commits second hits the unique constraint on
    (job, case index), removes its own files and returns None.
    """
    folder = f"cases/{job.uid}/{case.request.case_index:04d}/{uuid.uuid4().hex[:12]}"
    saved: list[str] = []
    try:
        paths = {}
        for tp in case.timepoints:
            paths[tp.sop_uid] = _save(f"{folder}/t{tp.timepoint:02d}-image.dcm", tp.image_bytes)
            saved.append(paths[tp.sop_uid])
            if tp.seg_bytes is not None:
                paths[tp.seg_sop_uid] = _save(f"{folder}/t{tp.timepoint:02d}-seg.dcm", tp.seg_bytes)
                saved.append(paths[tp.seg_sop_uid])
        with transaction.atomic():
            return _create_rows(job, case, paths)
    except IntegrityError:
        _delete(saved)
        if job.cases.filter(case_index=case.request.case_index).exists():
            logger.info(
                "case %s of job %s was committed by another delivery",
                case.request.case_index,
                job.pk,
            )
            return None
        raise
    except BaseException:
        _delete(saved)
        raise


def _save(name: str, content: bytes) -> str:
    return default_storage.save(name, ContentFile(content))


def _delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _create_rows(
    job: GenerationJob, case: GeneratedCase, paths: dict[str, str]
) -> SyntheticPatient:
    spec = case.patient
    patient = SyntheticPatient.objects.create(
        job=job,
        case_index=case.request.case_index,
        template_version=job.template_version,
        patient_id=spec.patient_id,
        patient_name=spec.name,
        sex=spec.sex,
        birth_date=spec.birth_date,
        age_at_first_study=spec.age,
        comorbidities=list(spec.comorbidities),
        history=spec.vignette,
        seed=case.seed,
        latent_z=[float(v) for v in case.z],
    )
    for tp in case.timepoints:
        study = Study.objects.create(
            patient=patient,
            study_uid=tp.study_uid,
            study_date=tp.study_date,
            timepoint=tp.timepoint,
            severity=tp.severity,
            accession_number=tp.accession_number,
            description=tp.study_description,
        )
        series = Series.objects.create(
            study=study,
            series_uid=tp.series_uid,
            modality=case.request.modality,
            series_number=1,
            description=tp.series_description,
        )
        image = Instance.objects.create(
            series=series,
            sop_instance_uid=tp.sop_uid,
            sop_class_uid=case.sop_class_uid,
            instance_number=1,
            file=paths[tp.sop_uid],
            size=len(tp.image_bytes),
            seed=case.seed,
            truncation=case.request.truncation,
            severity=tp.severity,
            latent_w=tp.latent_w,
        )
        if tp.seg_bytes is None:
            continue
        seg_series = Series.objects.create(
            study=study,
            series_uid=tp.seg_series_uid,
            modality="SEG",
            series_number=101,
            description=f"Lesion ground truth ({case.request.finding})",
        )
        seg = Instance.objects.create(
            series=seg_series,
            sop_instance_uid=tp.seg_sop_uid,
            sop_class_uid="1.2.840.10008.5.1.4.1.1.66.4",
            instance_number=1,
            file=paths[tp.seg_sop_uid],
            size=len(tp.seg_bytes),
            seed=case.seed,
            truncation=case.request.truncation,
            severity=tp.severity,
            latent_w=tp.latent_w,
        )
        centroid = tp.mask_centroid or (None, None)
        LesionGroundTruth.objects.create(
            image=image,
            segmentation=seg,
            area_pixels=tp.mask_area,
            centroid_row=centroid[0],
            centroid_col=centroid[1],
        )
    return patient
