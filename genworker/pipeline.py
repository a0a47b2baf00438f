"""From a template's request to one complete synthetic case in memory: patient, images, DICOM.

Pure: no Django, no storage. The same request (model, job seed, case index) reproduces the
same patient, the same pixels and the same UIDs, which makes a retried task idempotent.
"""

from __future__ import annotations

import hashlib
import time as clock
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from functools import partial

import numpy as np

from genworker import dicom, dicom_templates
from genworker.checkpoint import LoadedGenerator
from genworker.networks import z_from_seed
from genworker.patients import PatientRecipe, SyntheticPatientSpec, draw_patient, study_timeline
from genworker.sampling import Series, SeriesSpec, progression_batch

BODY_PART = {"MR": "BRAIN", "DX": "CHEST"}
# The fields of view of the simulated cohorts, for generators whose card gives no spacing.
FIELD_OF_VIEW_MM = {"MR": 200.0, "DX": 330.0}
STUDY_TIME = time(9, 0)


@dataclass(frozen=True)
class CaseRequest:
    job_uid: str  # globally unique id of the job; UIDs derive from it
    job_seed: int
    case_index: int
    title: str
    finding: str
    modality: str
    truncation: float
    method: str  # "condition" or "direction"
    recipe: PatientRecipe
    start_date: date
    side: str | None = None  # where the lesion goes, for generators that place it
    location: str | None = None


@dataclass
class ChannelImage:
    """Another channel of a timepoint (e.g. FLAIR beside T1), as its own series."""

    channel: str
    series_uid: str
    sop_uid: str
    series_number: int
    series_description: str
    image_bytes: bytes


@dataclass
class TimepointResult:
    timepoint: int
    study_date: date
    severity: float
    study_uid: str
    series_uid: str
    sop_uid: str
    accession_number: str
    study_description: str
    series_description: str
    image_bytes: bytes
    latent_w: list[float]
    seg_series_uid: str | None = None
    seg_sop_uid: str | None = None
    seg_bytes: bytes | None = None
    mask_area: int = 0
    mask_centroid: tuple[float, float] | None = None
    more_channels: list[ChannelImage] = field(default_factory=list)
    lesion: dict = field(default_factory=dict)  # facts of the mask: mm, side, location


@dataclass
class GeneratedCase:
    request: CaseRequest
    patient: SyntheticPatientSpec
    seed: int
    z: np.ndarray  # float32 [z_dim]
    sop_class_uid: str
    timepoints: list[TimepointResult]
    timings: dict[str, float] = field(default_factory=dict)
    attempts: int = 1  # lesion plans the generator tried before one passed its own check
    twin: GeneratedCase | None = None  # the same patient without the finding, when asked for


def case_seed(job_seed: int, case_index: int) -> int:
    """The identity seed of one case, derived from the job's seed."""
    return int(np.random.SeedSequence([job_seed, case_index]).generate_state(1)[0] & 0x7FFFFFFF)


def generator_identity(loaded: LoadedGenerator, software_version: str) -> dicom.GeneratorIdentity:
    card = loaded.card
    return dicom.GeneratorIdentity(
        name=str(card.get("name", "generator")),
        architecture=str(card.get("architecture", "")),
        sha256=loaded.sha256,
        software_version=software_version,
    )


@dataclass
class CasePlan:
    """Everything about one case decided before sampling: patient, identity, timeline."""

    request: CaseRequest
    patient: SyntheticPatientSpec
    seed: int
    z: np.ndarray  # float32 [z_dim]
    timeline: list[tuple[date, float]]  # (study date, severity) per timepoint
    twin: bool = False  # the plan of a normal twin (see twin_plan)

    def series_spec(self) -> SeriesSpec:
        return SeriesSpec(
            z=self.z,
            finding=self.request.finding,
            severities=[severity for _, severity in self.timeline],
            age=self.patient.age,
            sex=self.patient.sex,
            truncation=self.request.truncation,
            method=self.request.method,
            seed=self.seed,
            side=self.request.side,
            location=self.request.location,
        )

    def twin_spec(self, z: np.ndarray) -> SeriesSpec:
        """The series of this case's normal twin: the identity ``z`` the case was made from
        (a generator may have drawn another than ``self.z``), severity 0 at every timepoint."""
        return replace(self.series_spec(), z=z, severities=[0.0] * len(self.timeline))

    def twin_plan(self, z: np.ndarray) -> CasePlan:
        """The plan the twin is written from: the same patient (demographics, history, dates)
        under a patient id and UIDs of its own, derived like the case's, so that nothing in
        them tells a twin from a case."""
        token = hashlib.sha256(
            f"{self.request.job_uid}/{self.request.case_index}/normal-twin".encode()
        ).hexdigest()
        patient = replace(self.patient, patient_id=f"SYNTH-{token[:12]}")
        timeline = [(day, 0.0) for day, _ in self.timeline]
        return replace(self, patient=patient, z=z, timeline=timeline, twin=True)


def plan_case(request: CaseRequest, *, z_dim: int) -> CasePlan:
    seed = case_seed(request.job_seed, request.case_index)
    rng = np.random.default_rng([request.job_seed, request.case_index])
    patient = draw_patient(
        request.recipe, rng, start_date=request.start_date, finding=request.finding
    )
    # Unique per job and case, even for two jobs that share a seed (they share pixels).
    token = hashlib.sha256(f"{request.job_uid}/{request.case_index}".encode()).hexdigest()
    patient = replace(patient, patient_id=f"SYNTH-{token[:12]}")
    timeline = study_timeline(request.recipe, start_date=request.start_date)
    z = z_from_seed(seed, 1, z_dim)[0]
    return CasePlan(request, patient, seed, z, timeline)


def generate_case(
    loaded: LoadedGenerator, request: CaseRequest, *, software_version: str
) -> GeneratedCase:
    """Draw the patient, sample the progression series and write every DICOM object."""
    plan = plan_case(request, z_dim=loaded.z_dim)
    started = clock.perf_counter()
    (series,) = progression_batch(loaded, [plan.series_spec()])
    case = write_case(loaded, plan, series, software_version=software_version)
    case.timings["generator"] = clock.perf_counter() - started - case.timings["dicom"]
    return case


def write_twin(
    loaded: LoadedGenerator, plan: CasePlan, series: Series, *, software_version: str
) -> GeneratedCase:
    """The normal twin of ``plan``'s case from ``series``, sampled from ``plan.twin_spec``.

    The finding is absent by construction (severity 0), so the twin's ground truth is an
    empty mask at every timepoint, whatever a mask channel drew at that condition.
    """
    z = plan.z if series.z is None else series.z
    empty = replace(
        series,
        masks=None if series.masks is None else np.zeros_like(series.masks),
        lesions=[],
        z=z,
    )
    return write_case(loaded, plan.twin_plan(z), empty, software_version=software_version)


def write_case(
    loaded: LoadedGenerator, plan: CasePlan, series: Series, *, software_version: str
) -> GeneratedCase:
    """The DICOM image (and SEG, where there is a mask) of every timepoint of the case."""
    started = clock.perf_counter()
    identity = generator_identity(loaded, software_version)
    spacing = pixel_spacing_mm(loaded.card, plan.request.modality, series.images.shape[-1])
    timepoints = [
        _timepoint(plan, identity, series, t, when, spacing) for t, when in enumerate(plan.timeline)
    ]
    return GeneratedCase(
        request=plan.request,
        patient=plan.patient,
        seed=plan.seed,
        z=plan.z if series.z is None else series.z,
        sop_class_uid=dicom.SOP_CLASS_FOR_MODALITY[plan.request.modality],
        timepoints=timepoints,
        timings={"dicom": clock.perf_counter() - started},
        attempts=series.attempts,
    )


def pixel_spacing_mm(card: dict, modality: str, matrix: int) -> float:
    """The true spacing: what the generator's card says, else its cohort's field of view
    over the matrix."""
    if card.get("pixel_spacing_mm"):
        return float(card["pixel_spacing_mm"])
    return FIELD_OF_VIEW_MM.get(modality, 200.0) / matrix


def _uid_key(plan: CasePlan, *parts: object) -> tuple:
    """What the name-based UIDs of one of the plan's objects derive from."""
    case = (plan.request.job_uid, plan.request.case_index)
    return (*case, "normal-twin", *parts) if plan.twin else (*case, *parts)


def _timepoint(
    plan: CasePlan,
    identity: dicom.GeneratorIdentity,
    series: Series,
    t: int,
    when: tuple[date, float],
    spacing_mm: float,
) -> TimepointResult:
    request, patient, seed = plan.request, plan.patient, plan.seed
    study_date, _ = when
    severity = float(series.severities[t])  # what was drawn, where it differs from the request
    key = _uid_key(plan, t)
    created = datetime.combine(study_date, STUDY_TIME)
    channels = series.channels or (request.modality,)
    header = dicom.ImageHeader(
        modality=request.modality,
        body_part=BODY_PART.get(request.modality, ""),
        study_uid=dicom.uid_from(*key, "study"),
        series_uid=dicom.uid_from(*key, "series"),
        sop_uid=dicom.uid_from(*key, "image"),
        frame_of_reference_uid=dicom.uid_from(*_uid_key(plan, "frame")),
        study_date=study_date,
        study_time=STUDY_TIME,
        accession_number="G" + hashlib.sha256(repr(key).encode()).hexdigest()[:15].upper(),
        study_description=dicom.fit_lo(f"{request.title} — timepoint {t + 1}"),
        series_description=f"Synthetic {channels[0]} t{t + 1}",
        series_number=1,
        instance_number=1,
        pixel_spacing_mm=spacing_mm,
        seed=seed,
        severity=severity,
        timepoint=t,
    )
    patient_header = dicom.PatientHeader(
        patient_id=patient.patient_id,
        patient_name=patient.name,
        birth_date=patient.birth_date,
        sex=patient.sex,
    )
    image = partial(dicom_templates.image_file, patient=patient_header, generator=identity)
    result = TimepointResult(
        timepoint=t,
        study_date=study_date,
        severity=severity,
        study_uid=header.study_uid,
        series_uid=header.series_uid,
        sop_uid=header.sop_uid,
        accession_number=header.accession_number,
        study_description=header.study_description,
        series_description=header.series_description,
        image_bytes=image(series.images[t], header=header, created=created),
        latent_w=series.w[t].tolist(),
        lesion=series.lesions[t] if series.lesions else {},
    )
    for c, channel in enumerate(channels[1:]):
        more = replace(
            header,
            series_uid=dicom.uid_from(*key, "series", channel),
            sop_uid=dicom.uid_from(*key, "image", channel),
            series_number=c + 2,
            series_description=f"Synthetic {channel} t{t + 1}",
        )
        pixels = series.more_channels[t, c]
        result.more_channels.append(
            ChannelImage(
                channel=channel,
                series_uid=more.series_uid,
                sop_uid=more.sop_uid,
                series_number=more.series_number,
                series_description=more.series_description,
                image_bytes=image(pixels, header=more, created=created),
            )
        )
    if series.masks is not None:
        _add_segmentation(result, series.masks[t], plan, header, patient_header, identity)
    return result


def _add_segmentation(
    result: TimepointResult,
    mask: np.ndarray,
    plan: CasePlan,
    header: dicom.ImageHeader,
    patient: dicom.PatientHeader,
    identity: dicom.GeneratorIdentity,
) -> None:
    """The timepoint's lesion as a DICOM SEG of its first channel's image."""
    request = plan.request
    key = _uid_key(plan, result.timepoint)
    result.seg_series_uid = dicom.uid_from(*key, "seg-series")
    result.seg_sop_uid = dicom.uid_from(*key, "seg")
    result.seg_bytes = dicom_templates.segmentation_file(
        mask,
        patient=patient,
        header=header,
        generator=identity,
        created=datetime.combine(result.study_date, STUDY_TIME),
        finding=request.finding,
        series_uid=result.seg_series_uid,
        sop_uid=result.seg_sop_uid,
    )
    result.mask_area = int(mask.sum())
    if result.mask_area:
        rows, cols = np.nonzero(mask)
        result.mask_centroid = (float(rows.mean()), float(cols.mean()))
