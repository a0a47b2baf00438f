"""The answer keys of a quiz item, read from the case: shown image order, true timepoints,
lesion masks and severities; and, for questions that take it, the reference standard read
from the experts' reference readings. Server side only; never serialised for a trainee
before the answer is revealed."""

from __future__ import annotations

import math
import random
import re
from functools import lru_cache
from typing import Any

import numpy as np
import pydicom

from cases.imaging.viewer import NON_IMAGE_MODALITIES
from cases.models import Instance, LesionGroundTruth, Series, SyntheticPatient
from edu import scoring
from edu.models import Answer, Attempt, Question, QuizItem
from edu.scoring import Lesion


def case_images(item: QuizItem) -> list[Instance]:
    """The case's image instances (not SEG), one per timepoint, in true time order."""
    return images_of_case(item.case)


def images_of_case(case: SyntheticPatient) -> list[Instance]:
    """A case's image instances (not SEG), one per timepoint, in true time order: of a
    multi-contrast study, its first series' (T1 of T1, FLAIR, T1c), so that a question
    about studies asks about each study once."""
    images = (
        Instance.objects.filter(series__study__patient=case)
        .exclude(series__modality="SEG")
        .select_related("series__study")
        .order_by("series__study__timepoint", "series__series_number", "instance_number")
    )
    first: dict[int, Instance] = {}
    for image in images:
        first.setdefault(image.series.study.timepoint, image)
    return list(first.values())


def contrasts_of(image: Instance) -> list[Instance]:
    """The images of ``image``'s study, one per image series, by series number: T1, FLAIR and
    T1c of a brain MRI study, ``image`` first (it is its study's first series); ``image``
    alone of a radiograph. A question is about the study: any of them may be read."""
    images = (
        Instance.objects.filter(series__study=image.series.study_id)
        .exclude(series__modality__in=NON_IMAGE_MODALITIES)
        .select_related("series")
        .order_by("series__series_number", "instance_number")
    )
    first: dict[int, Instance] = {}
    for other in images:
        first.setdefault(other.series_id, other)
    return list(first.values())


# A generator's Series Description: "Synthetic FLAIR t2", channel and timepoint.
_GENERATED_SERIES = re.compile(r"Synthetic (?P<channel>.+) t\d+")


def contrast_label(series: Series) -> str:
    """What a quiz calls a contrast: the generator's channel ("FLAIR"), never the rest of the
    Series Description, which names the timepoint (the answer to a staging question)."""
    match = _GENERATED_SERIES.fullmatch(series.description)
    return match["channel"] if match else f"Series {series.series_number}"


def _first_channel(images: list[Instance], timepoint: int) -> Instance:
    """The image of ``timepoint`` among ``images`` (the first channel's, where there are more)."""
    at = [i for i in images if i.series.study.timepoint == timepoint]
    return min(at, key=lambda image: image.series.series_number)


def normal_twin(item: QuizItem) -> SyntheticPatient:
    return SyntheticPatient.objects.get(twin_of=item.case_id)


def shows_twin(attempt: Attempt, item: QuizItem) -> bool:
    """Whether this attempt shows the case's normal twin in the case's place: items asking
    "is this normal?", drawn at the quiz's ``normal_twin_rate``, seeded by the attempt and
    the item so that a reload shows the same patient."""
    if item.layout != Question.Layout.CASE_OR_TWIN:
        return False
    return random.Random(f"{attempt.seed}:{item.pk}:twin").random() < attempt.quiz.normal_twin_rate


def change_question(item: QuizItem) -> Question:
    return next(q for q in item.questions.all() if q.kind == Question.Kind.CHANGE)


def shown_images(attempt: Attempt, item: QuizItem) -> list[Instance]:
    """The images in the order this attempt shows them, by the item's layout: shuffled for
    staging; the case and its normal twin at the case's most severe timepoint, in random
    order; the prior and the current study; or the normal twin's series in place of the
    case's. Nothing in the images' URLs (their index) or order tells which is the twin.

    Random choices are seeded by the attempt and the item, so a reload shows the same.
    """
    layout = item.layout
    if layout == Question.Layout.PAIR:
        case = images_of_case(item.case)
        timepoint = max(case, key=lambda image: image.severity).series.study.timepoint
        pair = [
            _first_channel(case, timepoint),
            _first_channel(images_of_case(normal_twin(item)), timepoint),
        ]
        random.Random(f"{attempt.seed}:{item.pk}:pair").shuffle(pair)
        return pair
    if layout == Question.Layout.PRIOR:
        case = images_of_case(item.case)
        prior, current = change_question(item).compared_studies(item.case.studies.count())
        return [_first_channel(case, prior), _first_channel(case, current)]
    if shows_twin(attempt, item):
        return images_of_case(normal_twin(item))
    images = case_images(item)
    if layout == Question.Layout.SHUFFLED:
        random.Random(attempt.seed * 1_000_003 + item.pk).shuffle(images)
    return images


def abnormal_index(item: QuizItem, images: list[Instance]) -> int:
    """Which of the shown images is the case's (not its normal twin's)."""
    return next(
        d for d, image in enumerate(images) if image.series.study.patient_id == item.case_id
    )


def lesion_size(image: Instance) -> tuple[float, str]:
    """The lesion's size on ``image`` and its unit: the longest diameter in mm where the
    generator gave the pixel spacing, else the diameter of a disc of its area, in pixels;
    0 without a lesion."""
    truth = LesionGroundTruth.objects.filter(image=image).first()
    if truth is None or not truth.area_pixels:
        return 0.0, "mm"
    if truth.longest_diameter_mm is not None:
        return truth.longest_diameter_mm, "mm"
    return 2 * math.sqrt(truth.area_pixels / math.pi), "px"


def true_change(images: list[Instance]) -> dict:
    """The known change between the prior and the current image (a prior layout's pair):
    grew, shrank or unchanged (``scoring.change_between``) and the sizes it is read from."""
    (prior, prior_unit), (current, unit) = lesion_size(images[0]), lesion_size(images[1])
    return {
        "true": scoring.change_between(prior, current),
        "prior_size": prior,
        "current_size": current,
        "unit": unit if current else prior_unit,
    }


@lru_cache(maxsize=256)
def _mask_from_seg(segmentation_pk: int) -> np.ndarray:
    """The binary mask of a one-frame DICOM SEG (cached by instance: masks never change)."""
    seg = Instance.objects.get(pk=segmentation_pk)
    with seg.file.open("rb") as fh:
        frames = pydicom.dcmread(fh).pixel_array
    return np.asarray(frames, dtype=bool).reshape(frames.shape[-2:])


@lru_cache(maxsize=256)
def _pixel_spacing(image_pk: int) -> tuple[float, float]:
    """(row, column) spacing in mm of an image: Pixel Spacing, or Imager Pixel Spacing for
    radiographs; 1 mm when the file gives neither."""
    image = Instance.objects.get(pk=image_pk)
    with image.file.open("rb") as fh:
        header = pydicom.dcmread(fh, stop_before_pixels=True)
    spacing = header.get("PixelSpacing") or header.get("ImagerPixelSpacing")
    return (float(spacing[0]), float(spacing[1])) if spacing else (1.0, 1.0)


def lesion_of(image: Instance) -> Lesion | None:
    """The one lesion of a shown image with its pixel spacing; None without ground truth."""
    truth = LesionGroundTruth.objects.filter(image=image).first()
    if truth is None:
        return None
    mask = scoring.one_lesion(_mask_from_seg(truth.segmentation_id))
    return Lesion(mask=mask, spacing_mm=_pixel_spacing(image.pk))


def outline(lesion: Lesion | None) -> dict[str, Any] | None:
    """The lesion as the viewer's mask overlay (static/js/viewer-draw.js): runs
    [start, length, ...] of row-major pixel indices."""
    if lesion is None or not lesion.mask.any():
        return None
    flat = np.concatenate(([0], lesion.mask.ravel().astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(flat))
    starts, ends = edges[0::2], edges[1::2]
    runs = np.column_stack((starts, ends - starts)).ravel()
    rows, columns = lesion.mask.shape
    return {"type": "mask", "rows": rows, "columns": columns, "runs": runs.tolist()}


def true_timepoints(images: list[Instance]) -> list[int]:
    return [image.series.study.timepoint for image in images]


def max_severity(item: QuizItem) -> float:
    return max(study.severity for study in item.case.studies.all())


def reference_responses(question: Question) -> list[dict]:
    """The reference readers' responses to ``question``, oldest first."""
    return list(
        Answer.objects.filter(question=question, attempt__is_reference=True)
        .order_by("answered_at", "pk")
        .values_list("response", flat=True)
    )


def reference_key(question: Question) -> str | float | None:
    """The reference standard: the majority free-text answer (normalised) or the median
    severity of the reference readers; None while there is none."""
    responses = reference_responses(question)
    if question.kind == Question.Kind.FREE_TEXT:
        return scoring.majority_text([r["text"] for r in responses])
    if question.kind == Question.Kind.SEVERITY:
        return scoring.median([r["value"] for r in responses])
    return None
