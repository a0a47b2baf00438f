"""Building a Turing study: draw the images, blind them once, assign the raters.

Every image is blinded when the study is created, not when it is served: the served file
is then read from storage the same way for both sides, so the server's response time
cannot depend on the source's size, transfer syntax or decoding cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import QuerySet

from cases.imaging.blinding import BlindSpec, reading_copy
from cases.models import (
    GeneratorModel,
    Instance,
    ReferenceImage,
    ReferencePool,
    SyntheticPatient,
)
from turing.models import StudyImage, StudyRater, TuringStudy, new_seed

MAX_IMAGES = 400
PIXEL_SPACING_AT_128 = {"MR": 1.0, "DX": 2.5}  # mm; the field of view of the demo generators


@dataclass
class StudyPlan:
    """What an educator asks for; ``build_study`` checks it and makes the study."""

    title: str
    pool: ReferencePool
    n_images: int
    synthetic_ratio: float
    raters: Sequence[Any]  # users
    generator: GeneratorModel | None = None
    cases: Sequence[SyntheticPatient] = field(default_factory=list)
    ask_realism: bool = False
    ask_comment: bool = False
    allow_back: bool = False
    seed: int | None = None


def synthetic_candidates(plan: StudyPlan) -> QuerySet[Instance]:
    """Image instances (not SEG) of the approved cases on the synthetic side."""
    approved = SyntheticPatient.objects.filter(status=SyntheticPatient.Status.APPROVED)
    if plan.generator is not None:
        approved = approved.filter(template_version__generator=plan.generator)
    else:
        approved = approved.filter(pk__in=[case.pk for case in plan.cases])
    return Instance.objects.filter(series__study__patient__in=approved).exclude(
        series__modality="SEG"
    )


def study_generator(plan: StudyPlan) -> GeneratorModel:
    if plan.generator is not None:
        return plan.generator
    generators = {case.template_version.generator for case in plan.cases}
    if len(generators) != 1:
        raise ValidationError("the chosen cases must all come from one generator")
    return generators.pop()


def _check(plan: StudyPlan) -> None:
    if (plan.generator is None) == (not plan.cases):
        raise ValidationError("choose either a generator or a set of approved cases")
    if not 2 <= plan.n_images <= MAX_IMAGES:
        raise ValidationError(f"a study has 2 to {MAX_IMAGES} images")
    if not 0.0 < plan.synthetic_ratio < 1.0:
        raise ValidationError("the synthetic share must lie strictly between 0 and 1")
    if not plan.raters:
        raise ValidationError("choose at least one rater")
    if plan.pool.holds_synthetic:
        raise ValidationError(
            "the pool holds synthetic teaching files: choose a pool of real images"
        )


def _draw(rng: np.random.Generator, pks: list[int], n: int, what: str) -> list[int]:
    if len(pks) < n:
        raise ValidationError(f"the study needs {n} {what} images but only {len(pks)} exist")
    return [pks[i] for i in sorted(rng.choice(len(pks), size=n, replace=False))]


def build_study(plan: StudyPlan, *, created_by: Any) -> TuringStudy:
    """Create the study with its blinded images and raters, or raise ValidationError."""
    _check(plan)
    generator = study_generator(plan)
    seed = plan.seed if plan.seed is not None else new_seed()
    rng = np.random.default_rng(seed)
    n_synthetic = round(plan.n_images * plan.synthetic_ratio)
    n_synthetic = min(max(n_synthetic, 1), plan.n_images - 1)
    synthetic_pks = sorted(synthetic_candidates(plan).values_list("pk", flat=True))
    real_pks = sorted(
        plan.pool.images.filter(modality=generator.modality).values_list("pk", flat=True)
    )
    sources = [("synthetic", pk) for pk in _draw(rng, synthetic_pks, n_synthetic, "synthetic")]
    real_label = f"real {generator.modality}"
    sources += [
        ("real", pk) for pk in _draw(rng, real_pks, plan.n_images - n_synthetic, real_label)
    ]
    sources = [sources[i] for i in rng.permutation(len(sources))]  # pk order tells nothing
    spec = BlindSpec(
        modality=generator.modality,
        size=generator.resolution,
        pixel_spacing_mm=PIXEL_SPACING_AT_128.get(generator.modality, 1.0)
        * 128
        / generator.resolution,
    )
    blinded = [(side, pk, _blinded_bytes(side, pk, spec)) for side, pk in sources]
    with transaction.atomic():
        study = TuringStudy.objects.create(
            title=plan.title,
            created_by=created_by,
            generator=plan.generator,
            pool=plan.pool,
            n_images=plan.n_images,
            synthetic_ratio=plan.synthetic_ratio,
            modality=spec.modality,
            image_size=spec.size,
            pixel_spacing_mm=spec.pixel_spacing_mm,
            seed=seed,
            ask_realism=plan.ask_realism,
            ask_comment=plan.ask_comment,
            allow_back=plan.allow_back,
        )
        study.cases.set(plan.cases)
        for side, pk, data in blinded:
            image = StudyImage(study=study, side=side, blinded_size=len(data))
            if side == StudyImage.Side.SYNTHETIC:
                image.instance_id = pk
            else:
                image.reference_id = pk
            image.blinded.save(f"{study.pk}/{image.token}.dcm", ContentFile(data), save=False)
            image.save()
        for user in plan.raters:
            StudyRater.objects.create(study=study, user=user, order_seed=int(rng.integers(2**31)))
    return study


def _blinded_bytes(side: str, pk: int, spec: BlindSpec) -> bytes:
    """Blind one source; every source is blinded before anything is written."""
    model = Instance if side == StudyImage.Side.SYNTHETIC else ReferenceImage
    source = model.objects.get(pk=pk).file
    with source.open("rb") as fh:
        try:
            return reading_copy(fh.read(), spec)
        except ValueError as exc:
            raise ValidationError(f"{side} image {source.name}: {exc}") from exc
