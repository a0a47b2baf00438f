"""The persistence of generated cases: files through Django's storage API, then every row of
a batch of cases in one transaction; and the sweep of files a dead attempt left behind."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydicom.uid import SegmentationStorage

from cases.generation.bulk import insert_rows
from cases.models import (
    GenerationJob,
    Instance,
    LesionGroundTruth,
    Series,
    Study,
    SyntheticPatient,
)
from genworker.pipeline import GeneratedCase

logger = logging.getLogger(__name__)


def sweep_unreferenced_files(job: GenerationJob) -> int:
    """Delete files a worker saved for a case but never committed (it died in between).

    Only for a finished, successful job: every case is committed, so any attempt folder
    without a referenced file belongs to a dead or duplicate attempt. Returns files deleted.
    """
    root = f"cases/{job.uid}"
    try:  # (object storage has no folders to ask exists() about: a prefix lists or is empty)
        case_folders = default_storage.listdir(root)[0]
    except FileNotFoundError:
        return 0
    referenced = set(
        Instance.objects.filter(series__study__patient__job=job).values_list("file", flat=True)
    )
    deleted = 0
    for case_folder in case_folders:
        for attempt in default_storage.listdir(f"{root}/{case_folder}")[0]:
            folder = f"{root}/{case_folder}/{attempt}"
            names = [f"{folder}/{name}" for name in default_storage.listdir(folder)[1]]
            if referenced.isdisjoint(names):
                _delete(names)
                deleted += len(names)
    return deleted


def commit_case(job: GenerationJob, case: GeneratedCase) -> int | None:
    """Store one case (see :func:`commit_cases`); its patient's primary key, or None when
    another delivery of its task committed it first: then this one hits the unique
    constraint on (job, case index) and removes its own files."""
    try:
        (patient_pk,) = commit_cases([(job, case)])
    except IntegrityError:
        if job.cases.cases().filter(case_index=case.request.case_index).exists():
            logger.info(
                "case %s of job %s was committed by another delivery",
                case.request.case_index,
                job.pk,
            )
            return None
        raise
    return patient_pk


def commit_cases(cases: list[tuple[GenerationJob, GeneratedCase]]) -> list[int]:
    """Store the cases' files, then create all their rows in one transaction: each case is
    committed whole, or none is and their files are removed again. Returns the new
    patients' primary keys.

    Files go under a folder unique to this attempt, so two deliveries of the same task never
    overwrite each other's files. A case's normal twin (``case.twin``) is stored with it, its
    files beside the case's, its rows in the same transaction. One INSERT per table for all
    the cases: on a GPU this runs for hundreds of cases a second, and a statement (and a
    commit) per case was most of it.
    """
    if not cases:  # every case of the batch failed or was skipped: no write lock to take
        return []
    saved: list[str] = []
    try:
        paths = {}
        for job, case in cases:
            folder = f"cases/{job.uid}/{case.request.case_index:04d}/{uuid.uuid4().hex[:12]}"
            for name, patient in _with_twin(case):
                for tp in patient.timepoints:
                    files = [
                        (tp.sop_uid, "image", tp.image_bytes),
                        (tp.seg_sop_uid, "seg", tp.seg_bytes),
                        *((m.sop_uid, m.channel, m.image_bytes) for m in tp.more_channels),
                    ]
                    for sop_uid, kind, content in files:
                        if content is not None:
                            stem = f"{folder}/{name}t{tp.timepoint:02d}-{kind}.dcm"
                            paths[sop_uid] = _save(stem, content)
                            saved.append(paths[sop_uid])
        with transaction.atomic():
            return _create_rows(cases, paths)
    except BaseException:
        _delete(saved)
        raise


def _with_twin(case: GeneratedCase) -> list[tuple[str, GeneratedCase]]:
    """The case and its normal twin, if it has one, each with the prefix of its file names."""
    return [("", case)] + ([("twin-", case.twin)] if case.twin is not None else [])


def _save(name: str, content: bytes) -> str:
    """Save one file of a case through the storage API (a local folder, or object storage
    shared by the workers of several hosts); its storage name."""
    return default_storage.save(name, ContentFile(content))


def _delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _create_rows(
    cases: list[tuple[GenerationJob, GeneratedCase]], paths: dict[str, str]
) -> list[int]:
    """The rows of ``cases``, whose files are saved at ``paths`` (by SOP Instance UID): one
    INSERT per table. Returns the new patients' primary keys."""
    patient_pks = insert_rows(
        SyntheticPatient,
        [_patient_row(job, case) for job, case in cases],
        key=("job_id", "case_index"),
    )
    patients = [patient_pks[job.pk, case.request.case_index] for job, case in cases]
    stored = list(zip((case for _, case in cases), patients, strict=True))
    twins = [(job, case.twin, pk) for (job, case), pk in zip(cases, patients, strict=True)]
    twins = [(job, twin, pk) for job, twin, pk in twins if twin is not None]
    if twins:  # keyed by patient id: a twin shares its case's job and case index
        twin_pks = insert_rows(
            SyntheticPatient,
            [_patient_row(job, twin, twin_of=pk) for job, twin, pk in twins],
            key="patient_id",
        )
        stored += [(twin, twin_pks[twin.patient.patient_id]) for _, twin, _ in twins]
    timepoints = [(case, tp, patient) for case, patient in stored for tp in case.timepoints]
    study_pks = insert_rows(
        Study,
        [
            {
                "patient_id": patient,
                "study_uid": tp.study_uid,
                "study_date": tp.study_date,
                "timepoint": tp.timepoint,
                "severity": tp.severity,
                "accession_number": tp.accession_number,
                "description": tp.study_description,
            }
            for _, tp, patient in timepoints
        ],
        key="study_uid",
    )
    with_seg = [(case, tp) for case, tp, _ in timepoints if tp.seg_bytes is not None]
    # (its study's UID, series UID, modality, series number, description) of every series
    series = (
        [
            (tp.study_uid, tp.series_uid, case.request.modality, 1, tp.series_description)
            for case, tp, _ in timepoints
        ]
        + [
            (
                tp.study_uid,
                more.series_uid,
                case.request.modality,
                more.series_number,
                more.series_description,
            )
            for case, tp, _ in timepoints
            for more in tp.more_channels
        ]
        + [
            (
                tp.study_uid,
                tp.seg_series_uid,
                "SEG",
                101,
                f"Lesion ground truth ({case.request.finding})",
            )
            for case, tp in with_seg
        ]
    )
    series_pks = insert_rows(
        Series,
        [
            {
                "study_id": study_pks[study_uid],
                "series_uid": series_uid,
                "modality": modality,
                "series_number": number,
                "description": description,
            }
            for study_uid, series_uid, modality, number, description in series
        ],
        key="series_uid",
    )
    # (case, timepoint, series UID, SOP Instance UID, SOP Class UID, file) of every instance
    instances = (
        [
            (case, tp, tp.series_uid, tp.sop_uid, case.sop_class_uid, tp.image_bytes)
            for case, tp, _ in timepoints
        ]
        + [
            (case, tp, more.series_uid, more.sop_uid, case.sop_class_uid, more.image_bytes)
            for case, tp, _ in timepoints
            for more in tp.more_channels
        ]
        + [
            (case, tp, tp.seg_series_uid, tp.seg_sop_uid, SegmentationStorage, tp.seg_bytes)
            for case, tp in with_seg
        ]
    )
    instance_pks = insert_rows(
        Instance,
        [
            {
                "series_id": series_pks[series_uid],
                "sop_instance_uid": sop_uid,
                "sop_class_uid": sop_class_uid,
                "instance_number": 1,
                "file": paths[sop_uid],
                "size": len(content),
                "seed": case.seed,
                "truncation": case.request.truncation,
                "severity": tp.severity,
                "latent_w": tp.latent_w,
            }
            for case, tp, series_uid, sop_uid, sop_class_uid, content in instances
        ],
        key="sop_instance_uid",
    )
    insert_rows(
        LesionGroundTruth,
        [
            {
                "image_id": instance_pks[tp.sop_uid],
                "segmentation_id": instance_pks[tp.seg_sop_uid],
                "area_pixels": tp.mask_area,
                "centroid_row": (tp.mask_centroid or (None, None))[0],
                "centroid_col": (tp.mask_centroid or (None, None))[1],
                "area_mm2": tp.lesion.get("area_mm2"),
                "longest_diameter_mm": tp.lesion.get("longest_diameter_mm"),
                "side": tp.lesion.get("side", ""),
                "location": tp.lesion.get("location", ""),
                "segmented_dice": tp.lesion.get("segmented_dice"),
            }
            for _, tp in with_seg
        ],
    )
    return patients


def _patient_row(
    job: GenerationJob, case: GeneratedCase, twin_of: int | None = None
) -> dict[str, Any]:
    return {
        "job_id": job.pk,
        "case_index": case.request.case_index,
        "template_version_id": job.template_version_id,
        "patient_id": case.patient.patient_id,
        "patient_name": case.patient.name,
        "sex": case.patient.sex,
        "birth_date": case.patient.birth_date,
        "age_at_first_study": case.patient.age,
        "comorbidities": list(case.patient.comorbidities),
        "history": case.patient.vignette,
        "seed": case.seed,
        "latent_z": case.z.tolist(),
        "generation_attempts": case.attempts,
        "status": SyntheticPatient.Status.DRAFT,
        "twin_of_id": twin_of,
        "created_at": timezone.now(),
    }
