"""What an open study hides from its raters outside the study.

While a study is open, its raters must not reach its source images through any other door
(DICOMweb above all): a rater who could fetch the real pool could match pixels and learn
the truth.
"""

from __future__ import annotations

from typing import Any

from cases.dicomweb.access import Hidden
from cases.models import Instance, ReferenceImage
from turing.models import StudyImage, TuringStudy


def hidden_from_raters(user: Any) -> Hidden:
    if not getattr(user, "is_authenticated", False):
        return Hidden()
    images = StudyImage.objects.filter(
        study__status=TuringStudy.Status.OPEN, study__rater_set__user=user
    )
    return Hidden(
        instances=Instance.objects.filter(pk__in=images.values("instance")),
        reference_images=ReferenceImage.objects.filter(pk__in=images.values("reference")),
    )
