"""A closed study's responses as readings, their analysis, and the CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from turing.models import Response, TuringStudy
from turing.statistics import Analysis, Reading, analyse

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


def reading_of(response: Response) -> Reading:
    return Reading(
        rater=response.rater.user.get_username(),
        image=response.image.token,
        synthetic=response.image.is_synthetic,
        called_synthetic=response.called_synthetic,
        confidence=response.confidence,
        experience_years=response.rater.experience_years,
    )


def study_analysis(study: TuringStudy) -> Analysis:
    return analyse([reading_of(r) for r in _responses(study)])


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


def csv_text(study: TuringStudy) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(study))
    return buffer.getvalue()
