"""How a trainee's page shows the studies of a case, for quiz items and practice reviews
alike: each shown study in all its contrasts (T1, FLAIR, T1c of a brain MRI), called by the
contrast alone and addressed by the study's place on the page, and the blinded copy an
image URL serves. Nothing here names a timepoint the page does not already give."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpResponse

from cases.imaging.blinding import quiz_copy
from cases.models import Instance
from edu import keys


def contrasts(image: Instance, url: Callable[[int], str]) -> list[dict[str, str]]:
    """The contrasts of the study shown as ``image`` (its T1, FLAIR and T1c; the image alone
    of a radiograph), each called by its contrast only and addressed by ``url(c)``, where
    ``c`` is its place among them: 0 is ``image`` itself."""
    return [
        {"label": keys.contrast_label(other.series), "image": url(c)}
        for c, other in enumerate(keys.contrasts_of(image))
    ]


def viewer_studies(
    images: list[str], contrasts: list[list[dict[str, str]]], labels: list[str]
) -> dict[str, Any]:
    """The viewer's data of the shown studies: each with its contrasts side by side where it
    has more than one (T1, FLAIR, T1c), else the flat one image per study. A click on any
    contrast is a click on its study (the viewer's ``study``: the image's index)."""
    if all(len(of_study) == 1 for of_study in contrasts):
        return {"imageIds": [f"wadouri:{url}" for url in images], "labels": labels}
    studies = [
        {
            "label": label,
            "series": [
                {"key": c["label"], "label": c["label"], "imageIds": [f"wadouri:{c['image']}"]}
                for c in of_study
            ],
        }
        for label, of_study in zip(labels, contrasts, strict=True)
    ]
    return {"studies": studies, "labels": labels}


def blinded_image(
    images: list[Instance], index: int, contrast: int, *, key: str, seed: int
) -> HttpResponse:
    """The blinded copy (``cases.imaging.blinding.quiz_copy``) of contrast ``contrast`` of
    the study shown as ``images[index]`` (0: the image itself); 404 where there is none.

    ``key`` names the page's showing (an attempt's item, a practice review) and ``seed`` its
    seed: the contrasts of one shown study share a Study Instance UID, each has its own
    series and instance UIDs, and nothing ties them to the stored study.
    """
    if not 0 <= index < len(images):
        raise Http404("no such image")
    of_study = keys.contrasts_of(images[index]) if contrast else images[index : index + 1]
    if not 0 <= contrast < len(of_study):
        raise Http404("no such image")
    study_key = f"{key}:{index}:{seed}"  # the shown image's own
    opaque_key = f"{key}:{index}:{contrast}:{seed}" if contrast else study_key
    with of_study[contrast].file.open("rb") as fh:
        body = quiz_copy(fh, opaque_key=opaque_key, study_key=study_key)
    response = HttpResponse(body, content_type="application/dicom")
    response["Cache-Control"] = "private, max-age=3600"
    return response
