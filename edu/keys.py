"""The answer keys of a quiz item, read from the case: shown image order, true timepoints,
lesion masks and severities; and, for questions that take it, the reference standard read
from the experts' reference readings. Server side only; never serialised for a trainee
before the answer is revealed."""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np
import pydicom

from cases.models import Instance, LesionGroundTruth, SyntheticPatient
from edu import scoring
from edu.models import Answer, Attempt, Question, QuizItem
from edu.scoring import Lesion


def case_images(item: QuizItem) -> list[Instance]:
    """The case's image instances (not SEG), one per timepoint, in true time order."""
    return images_of_case(item.case)


def images_of_case(case: SyntheticPatient) -> list[Instance]:
    """A case's image instances (not SEG), one per timepoint, in true time order."""
    return list(
        Instance.objects.filter(series__study__patient=case)
        .exclude(series__modality="SEG")
        .select_related("series__study")
        .order_by("series__study__timepoint", "instance_number")
    )


def shown_images(attempt: Attempt, item: QuizItem) -> list[Instance]:
    """The images in the order this attempt shows them: shuffled for staging items.

    The permutation is seeded by the attempt and the item, so a reload shows the same order.
    """
    images = case_images(item)
    if item.shuffles_images:
        random.Random(attempt.seed * 1_000_003 + item.pk).shuffle(images)
    return images


@lru_cache(maxsize=256)
def _mask_from_seg(segmentation_pk: int) -> np.ndarray:
    """The binary mask of a one-frame DICOM SEG (cached by instance: masks never change)."""
    seg = Instance.objects.get(pk=segmentation_pk)
    with seg.file.open("rb") as fh:
        frames = pydicom.dcmread(fh).pixel_array
    return np.asarray(frames, dtype=bool).reshape(frames.shape[-2:])


def lesion_of(image: Instance) -> Lesion | None:
    truth = LesionGroundTruth.objects.filter(image=image).first()
    if truth is None:
        return None
    mask = _mask_from_seg(truth.segmentation_id)
    centroid = None
    if truth.area_pixels and truth.centroid_row is not None:
        centroid = (truth.centroid_row, truth.centroid_col)
    return Lesion(mask=mask, centroid=centroid)


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
