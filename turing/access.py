"""What an open study hides from its raters everywhere else.

While a study is open, its raters must not reach any image its sources could have been drawn
from, through any door (pages, the REST API, WADO-URI, DICOMweb, exports, quiz images): a
rater who could fetch a source could match pixels and learn the truth. Hidden are the whole
synthetic side (every case of the study's generator, or its chosen cases) and the whole
reference pool, not only the images drawn: what a rater's listings leave out then does not
depend on the draw, so it tells nothing about which image is which.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from cases.models import Hidden, Instance, ReferenceImage, ReferencePool, SyntheticPatient
from turing.models import StudyImage, TuringStudy


def hidden_from_raters(user: Any) -> Hidden:
    if not getattr(user, "is_authenticated", False):
        return Hidden()
    studies = TuringStudy.objects.filter(status=TuringStudy.Status.OPEN, rater_set__user=user)
    images = StudyImage.objects.filter(study__in=studies)
    return Hidden(
        instances=Instance.objects.filter(pk__in=images.values("instance")),
        reference_images=ReferenceImage.objects.filter(pk__in=images.values("reference")),
        cases=SyntheticPatient.objects.filter(
            Q(template_version__generator__in=studies.values("generator"))
            | Q(pk__in=studies.values("cases"))
        ),
        pools=ReferencePool.objects.filter(
            Q(pk__in=studies.values("pool")) | Q(pk__in=images.values("reference__pool"))
        ),
    )
