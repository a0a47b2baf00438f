"""A closed study's responses as readings, their analysis, and the CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from turing.models import QualityRating, Response, StudyImage, TrialResponse, TuringStudy
from turing.statistics import (
    Analysis,
    CarryOver,
    ForcedChoice,
    QualityComparison,
    Reading,
    TimeSpread,
    TrialReading,
    analyse,
    analyse_forced_choice,
    carry_over,
    compare_quality,
    reading_times,
    trial_times,
)


@dataclass(frozen=True)
class StudyResults:
    """Every figure of a closed study. Single-image studies have ``analysis`` and
    ``carry_over``; forced-choice studies ``forced_choice`` and its ``per_rater`` split;
    studies with an uninformed phase ``quality``."""

    analysis: Analysis | None
    carry_over: CarryOver | None
    forced_choice: ForcedChoice | None
    per_rater: dict[str, ForcedChoice]
    quality: QualityComparison | None
    times: dict[str, TimeSpread]


CSV_COLUMNS = (
    "study_id",
    "study_seed",
    "rater",
    "rater_experience_years",
    "rater_order_seed",
    "position",
    "image_token",
    "truth",
    "call",
    "confidence",
    "score_1_to_10",
    "correct",
    "realism",
    "time_on_image_ms",
    "comment",
    "answered_at",
    "source",
)


def _responses(study: TuringStudy):
    return (
        Response.objects.filter(rater__study=study)
        .select_related(
            "rater__user",
            "image__instance__series__study__patient",
            "image__reference__pool",
        )
        .order_by("rater__user__username", "image__pk")
    )


def reading_of(response: Response, position: int | None = None) -> Reading:
    return Reading(
        rater=response.rater.user.get_username(),
        image=response.image.token,
        synthetic=response.image.is_synthetic,
        called_synthetic=response.called_synthetic,
        confidence=response.confidence,
        experience_years=response.rater.experience_years,
        position=position,
        time_ms=response.time_on_image_ms,
    )


def _readings(study: TuringStudy) -> list[Reading]:
    """Every single-image reading with its place in the rater's order."""
    positions: dict[int, dict[int, int]] = {}
    readings = []
    for response in _responses(study):
        rater = response.rater
        if rater.pk not in positions:
            positions[rater.pk] = {pk: i + 1 for i, pk in enumerate(rater.order())}
        readings.append(reading_of(response, positions[rater.pk][response.image_id]))
    return readings


def _trial_readings(study: TuringStudy) -> list[TrialReading]:
    responses = TrialResponse.objects.filter(rater__study=study).select_related("rater__user")
    return [
        TrialReading(
            rater=r.rater.user.get_username(),
            trial=r.trial,
            correct=r.correct,
            time_ms=r.time_on_image_ms,
        )
        for r in responses.order_by("rater__user__username", "trial")
    ]


def _quality(study: TuringStudy) -> QualityComparison:
    scores: dict[str, list[int]] = {StudyImage.Side.REAL: [], StudyImage.Side.SYNTHETIC: []}
    ratings = QualityRating.objects.filter(rater__study=study)
    for side, quality in ratings.values_list("image__side", "quality"):
        scores[side].append(quality)
    return compare_quality(scores[StudyImage.Side.REAL], scores[StudyImage.Side.SYNTHETIC])


def study_analysis(study: TuringStudy) -> Analysis:
    return analyse(_readings(study))


def study_results(study: TuringStudy) -> StudyResults:
    quality = _quality(study) if study.uninformed_phase else None
    if study.is_forced_choice:
        trials = _trial_readings(study)
        pooled, per_rater = analyse_forced_choice(trials, study.alternatives)
        return StudyResults(None, None, pooled, per_rater, quality, trial_times(trials))
    readings = _readings(study)
    return StudyResults(
        analyse(readings), carry_over(readings), None, {}, quality, reading_times(readings)
    )


def csv_rows(study: TuringStudy) -> Iterator[list[object]]:
    """One row per response with everything needed to redo the analysis elsewhere."""
    positions: dict[int, dict[int, int]] = {}
    for response in _responses(study):
        rater, image = response.rater, response.image
        if rater.pk not in positions:
            positions[rater.pk] = {pk: i + 1 for i, pk in enumerate(rater.order())}
        reading = reading_of(response)
        yield [
            study.pk,
            study.seed,
            reading.rater,
            "" if rater.experience_years is None else rater.experience_years,
            rater.order_seed,
            positions[rater.pk][image.pk],
            image.token,
            image.side,
            "synthetic" if response.called_synthetic else "real",
            response.confidence,
            reading.score,
            int(reading.correct),
            "" if response.realism is None else response.realism,
            response.time_on_image_ms,
            response.comment,
            response.updated_at.isoformat(),
            image.source_identifier(),
        ]


TRIAL_CSV_COLUMNS = (
    "study_id",
    "study_seed",
    "format",
    "rater",
    "rater_experience_years",
    "trial",
    "shown_tokens",
    "shown_truths",
    "chosen_token",
    "chosen_truth",
    "correct",
    "time_on_image_ms",
    "answered_at",
)
QUALITY_CSV_COLUMNS = (
    "study_id",
    "rater",
    "rater_experience_years",
    "image_token",
    "truth",
    "quality_1_to_5",
    "time_on_image_ms",
    "answered_at",
    "source",
)


def _experience(rater) -> object:
    return "" if rater.experience_years is None else rater.experience_years


def trial_csv_rows(study: TuringStudy) -> Iterator[list[object]]:
    """One row per forced-choice pick: the trial's images in screen order and the pick."""
    trials = study.trials()
    images = {image.pk: image for image in study.images.all()}
    picks = TrialResponse.objects.filter(rater__study=study).select_related("rater__user")
    for pick in picks.order_by("rater__user__username", "trial"):
        shown = [images[pk] for pk in trials[pick.trial]]
        chosen = images[pick.chosen_id]
        yield [
            study.pk,
            study.seed,
            study.format,
            pick.rater.user.get_username(),
            _experience(pick.rater),
            pick.trial + 1,
            " ".join(image.token for image in shown),
            " ".join(image.side for image in shown),
            chosen.token,
            chosen.side,
            int(pick.correct),
            pick.time_on_image_ms,
            pick.updated_at.isoformat(),
        ]


def quality_csv_rows(study: TuringStudy) -> Iterator[list[object]]:
    """One row per image-quality score of the uninformed phase."""
    ratings = QualityRating.objects.filter(rater__study=study).select_related(
        "rater__user", "image"
    )
    for rating in ratings.order_by("rater__user__username", "created_at"):
        yield [
            study.pk,
            rating.rater.user.get_username(),
            _experience(rating.rater),
            rating.image.token,
            rating.image.side,
            rating.quality,
            rating.time_on_image_ms,
            rating.updated_at.isoformat(),
            rating.image.source_identifier(),
        ]


def csv_text(study: TuringStudy, part: str = "answers") -> str:
    """The study's answers (single-image readings or forced-choice picks) or, with ``part``
    "quality", its uninformed phase's quality scores, as CSV."""
    if part == "quality":
        header, rows = QUALITY_CSV_COLUMNS, quality_csv_rows(study)
    elif study.is_forced_choice:
        header, rows = TRIAL_CSV_COLUMNS, trial_csv_rows(study)
    else:
        header, rows = CSV_COLUMNS, csv_rows(study)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
