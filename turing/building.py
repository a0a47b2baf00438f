"""Building a Turing study: draw the images, blind them once, assign the raters.

Every image is blinded when the study is created, not when it is served: the served file
is then read from storage the same way for both sides, so the server's response time
cannot depend on the source's size, transfer syntax or decoding cost.

Blinding hundreds of images takes a while, so the study page checks the plan (``check_plan``)
and queues the build as a background operation on the cpu queue (``launch_build``). The task
builds the study and marks the operation finished in one transaction: a repeated delivery
finds it finished, and a failed build leaves no study and no blinded file.
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
from django.urls import reverse

from cases.imaging.blinding import BlindSpec, reading_copy
from cases.models import (
    AlreadyFinished,
    GeneratorModel,
    Instance,
    Operation,
    ReferenceImage,
    ReferencePool,
    SyntheticPatient,
)
from turing.models import StudyImage, StudyRater, TuringStudy, new_seed

MAX_IMAGES = 400
BUILD_TASK = "turing.tasks.build_study"
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
    format: str = TuringStudy.Format.SINGLE
    uninformed_phase: bool = False
    training: bool = False
    seed: int | None = None

    def as_params(self) -> dict[str, Any]:
        """The plan as plain values (primary keys) for a task."""
        return {
            "title": self.title,
            "pool": self.pool.pk,
            "n_images": self.n_images,
            "synthetic_ratio": self.synthetic_ratio,
            "raters": [user.pk for user in self.raters],
            "generator": self.generator.pk if self.generator else None,
            "cases": [case.pk for case in self.cases],
            "ask_realism": self.ask_realism,
            "ask_comment": self.ask_comment,
            "allow_back": self.allow_back,
            "format": self.format,
            "uninformed_phase": self.uninformed_phase,
            "training": self.training,
            "seed": self.seed,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> StudyPlan:
        from django.contrib.auth import get_user_model

        generator = params["generator"]
        return cls(
            title=params["title"],
            pool=ReferencePool.objects.get(pk=params["pool"]),
            n_images=params["n_images"],
            synthetic_ratio=params["synthetic_ratio"],
            raters=list(get_user_model().objects.filter(pk__in=params["raters"])),
            generator=GeneratorModel.objects.get(pk=generator) if generator else None,
            cases=list(SyntheticPatient.objects.filter(pk__in=params["cases"])),
            ask_realism=params["ask_realism"],
            ask_comment=params["ask_comment"],
            allow_back=params["allow_back"],
            format=params.get("format", TuringStudy.Format.SINGLE),
            uninformed_phase=params.get("uninformed_phase", False),
            training=params.get("training", False),
            seed=params["seed"],
        )


def synthetic_candidates(plan: StudyPlan) -> QuerySet[Instance]:
    """Image instances (not SEG) of the approved cases on the synthetic side."""
    approved = SyntheticPatient.objects.cases().filter(status=SyntheticPatient.Status.APPROVED)
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
    n_real = plan.n_images - _n_synthetic(plan)
    if plan.format == TuringStudy.Format.FOUR_AFC and n_real < 3:
        raise ValidationError(
            f"a 4AFC trial shows three real images: the study has only {n_real} real images"
        )
    if plan.pool.holds_synthetic:
        raise ValidationError(
            "the pool holds synthetic teaching files: choose a pool of real images"
        )


def _draw(rng: np.random.Generator, pks: list[int], n: int, what: str) -> list[int]:
    if len(pks) < n:
        raise ValidationError(f"the study needs {n} {what} images but only {len(pks)} exist")
    return [pks[i] for i in sorted(rng.choice(len(pks), size=n, replace=False))]


def _n_synthetic(plan: StudyPlan) -> int:
    n_synthetic = round(plan.n_images * plan.synthetic_ratio)
    return min(max(n_synthetic, 1), plan.n_images - 1)


def _candidates(plan: StudyPlan, generator: GeneratorModel) -> tuple[list[int], list[int]]:
    """The primary keys the study draws from: synthetic instances and real pool images."""
    synthetic_pks = sorted(synthetic_candidates(plan).values_list("pk", flat=True))
    real_pks = sorted(
        plan.pool.images.filter(modality=generator.modality).values_list("pk", flat=True)
    )
    return synthetic_pks, real_pks


def check_plan(plan: StudyPlan) -> None:
    """Raise ValidationError when the plan cannot make a study (quick: counts, no pixels)."""
    _check(plan)
    generator = study_generator(plan)
    synthetic_pks, real_pks = _candidates(plan, generator)
    n_synthetic = _n_synthetic(plan)
    for pks, n, what in (
        (synthetic_pks, n_synthetic, "synthetic"),
        (real_pks, plan.n_images - n_synthetic, f"real {generator.modality}"),
    ):
        if len(pks) < n:
            raise ValidationError(f"the study needs {n} {what} images but only {len(pks)} exist")


def launch_build(plan: StudyPlan, *, user: Any) -> Operation:
    """Check the plan, fix its seed and queue the build; raises ValidationError."""
    check_plan(plan)
    if plan.seed is None:
        plan.seed = new_seed()
    return Operation.launch(
        task=BUILD_TASK,
        title=f"Build of the Turing study {plan.title}",
        user=user,
        params={"plan": plan.as_params(), "back": reverse("turing:study-list")},
        total=plan.n_images,
    )


def run_build(operation: Operation) -> dict[str, Any]:
    """The task's work: build the planned study; its link is the result."""
    plan = StudyPlan.from_params(operation.params["plan"])
    study = build_study(plan, created_by=operation.requested_by, operation=operation)
    return _result(study)


def _result(study: TuringStudy) -> dict[str, Any]:
    return {
        "summary": f"Study created with {study.n_images} images.",
        "study": study.pk,
        "link": study.get_absolute_url(),
        "link_text": f"Open the study {study.title}",
    }


def build_study(
    plan: StudyPlan, *, created_by: Any, operation: Operation | None = None
) -> TuringStudy:
    """Create the study with its blinded images and raters, or raise ValidationError.
    With an ``operation``: report each blinded image as its progress, and mark it succeeded
    in the transaction that creates the study (AlreadyFinished when another delivery did)."""
    _check(plan)
    generator = study_generator(plan)
    seed = plan.seed if plan.seed is not None else new_seed()
    rng = np.random.default_rng(seed)
    n_synthetic = _n_synthetic(plan)
    synthetic_pks, real_pks = _candidates(plan, generator)
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
    blinded = []
    for side, pk in sources:
        blinded.append((side, pk, _blinded_bytes(side, pk, spec)))
        if operation is not None:
            operation.record_progress(len(blinded), len(sources))
    written: list[StudyImage] = []
    try:
        return _create(plan, created_by, seed, spec, rng, blinded, written, operation)
    except BaseException:
        for image in written:
            image.blinded.delete(save=False)
        raise


def _create(
    plan: StudyPlan,
    created_by: Any,
    seed: int,
    spec: BlindSpec,
    rng: np.random.Generator,
    blinded: list[tuple[str, int, bytes]],
    written: list[StudyImage],
    operation: Operation | None,
) -> TuringStudy:
    """The study's rows and blinded files, in one transaction; ``written`` collects the
    files saved, for the caller to remove should the transaction fail."""
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
            format=plan.format,
            uninformed_phase=plan.uninformed_phase,
            training=plan.training,
        )
        study.cases.set(plan.cases)
        for side, pk, data in blinded:
            image = StudyImage(study=study, side=side, blinded_size=len(data))
            if side == StudyImage.Side.SYNTHETIC:
                image.instance_id = pk
            else:
                image.reference_id = pk
            image.blinded.save(f"{study.pk}/{image.token}.dcm", ContentFile(data), save=False)
            written.append(image)
            image.save()
        for user in plan.raters:
            StudyRater.objects.create(study=study, user=user, order_seed=int(rng.integers(2**31)))
        if operation is not None and not operation.succeed(_result(study)):
            raise AlreadyFinished
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
