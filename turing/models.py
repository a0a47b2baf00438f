"""Visual Turing tests: blinded reading studies of real against synthetic images.

An educator builds a :class:`TuringStudy` (see ``turing.building``): a synthetic side (a
generator's approved cases, or a chosen set of approved cases), a real reference pool, the
number of images and the synthetic share, the raters and the response form. Every
:class:`StudyImage` is stored once, blinded (``cases.imaging.blinding``), under an opaque token;
each :class:`StudyRater` reads them in their own seeded order and leaves one
:class:`Response` per image. Closing the study opens its results and flags synthetic cases
that most raters recognised with confidence (:class:`CaseFlag`).

A study may open with an uninformed phase: raters, not told that synthetic images are
present, score each image's quality (:class:`QualityRating`); then the informed reading
starts. The informed reading is single images (real or synthetic?) or forced-choice trials of
two or four images (``turing.trials``) answered by :class:`TrialResponse`. A training study
tells the rater after each answer whether it was right; it never goes on a generator's card.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from cases.models import GeneratorModel, Instance, ReferenceImage, ReferencePool, SyntheticPatient
from turing.trials import forced_choice_trials

CONFIDENCE_HIGH = 4  # a call with this confidence or more counts as "confident"
LETTERS = "ABCD"  # the names of a forced-choice trial's images, left to right


def new_seed() -> int:
    return secrets.randbelow(2**31)


def new_token() -> str:
    """22 url-safe characters: the only name a rater's browser ever sees for an image."""
    return secrets.token_urlsafe(16)


def one_to_five(**kwargs: Any) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)], **kwargs
    )


POOL_ORIGIN_WORDS = {
    ReferenceImage.Origin.IMPORT: "images acquired from patients",
    ReferenceImage.Origin.COHORT: "simulated images of held-out subjects of a training cohort, "
    "not of patients",
    ReferenceImage.Origin.TEACHING_FILE: "images acquired from patients, from teaching files",
}


def describe_pool(pool: ReferencePool) -> str:
    """What a pool's images are, by how they arrived, for the raters' start page."""
    origins = set(pool.images.values_list("origin", flat=True).distinct())
    words = [
        POOL_ORIGIN_WORDS.get(origin, label)
        for origin, label in ReferenceImage.Origin.choices
        if origin in origins
    ]
    return " and ".join(words) or "no images yet"


class TuringStudy(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    class Format(models.TextChoices):
        SINGLE = "single", "Single images: real or synthetic?"
        TWO_AFC = "2afc", "2AFC: a real and a synthetic image, pick the real one"
        FOUR_AFC = "4afc", "4AFC: three real images and a synthetic one, pick the synthetic one"

    title = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    generator = models.ForeignKey(
        GeneratorModel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="turing_studies",
        help_text="Synthetic side: approved cases made by this generator.",
    )
    cases = models.ManyToManyField(
        SyntheticPatient,
        blank=True,
        related_name="turing_studies",
        help_text="Synthetic side: these approved cases (instead of a generator).",
    )
    pool = models.ForeignKey(ReferencePool, on_delete=models.PROTECT, related_name="studies")
    n_images = models.PositiveIntegerField()
    synthetic_ratio = models.FloatField()
    modality = models.CharField(max_length=16)
    image_size = models.PositiveIntegerField(help_text="Rows and columns of every served image.")
    pixel_spacing_mm = models.FloatField()
    seed = models.BigIntegerField(default=new_seed)
    ask_realism = models.BooleanField(default=False)
    ask_comment = models.BooleanField(default=False)
    allow_back = models.BooleanField(default=False)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.SINGLE)
    uninformed_phase = models.BooleanField(
        default=False,
        help_text="Raters first score image quality without being told synthetic images "
        "are present.",
    )
    training = models.BooleanField(
        default=False,
        help_text="Feedback after every answer; never recorded on the generator's card.",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    raters = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="StudyRater", related_name="turing_studies"
    )

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "Turing study"
        verbose_name_plural = "Turing studies"
        permissions = [
            ("run_study", "Build, run and close Turing studies"),
            ("join_studies", "Be chosen as a rater of Turing studies"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("turing:study-detail", args=[self.pk])

    @property
    def is_closed(self) -> bool:
        return self.status == self.Status.CLOSED

    @property
    def real_side_description(self) -> str:
        """What the pool's images are, in words a rater reads before starting: acquired from
        patients, or simulated (the held-out subjects of a training cohort), or both."""
        return describe_pool(self.pool)

    def synthetic_generator(self) -> GeneratorModel:
        """The generator whose images are the synthetic side (a study's chosen cases all
        come from one)."""
        if self.generator is not None:
            return self.generator
        return self.cases.select_related("template_version__generator")[
            0
        ].template_version.generator

    @property
    def is_forced_choice(self) -> bool:
        return self.format != self.Format.SINGLE

    @property
    def alternatives(self) -> int:
        """Images per trial (1 for single-image reading)."""
        return {self.Format.SINGLE: 1, self.Format.TWO_AFC: 2, self.Format.FOUR_AFC: 4}[self.format]

    @property
    def picks_synthetic(self) -> bool:
        """A 4AFC rater picks the synthetic image; a 2AFC rater picks the real one."""
        return self.format == self.Format.FOUR_AFC

    def trials(self) -> list[tuple[int, ...]]:
        """The forced-choice trials (image ids in screen order), from the study seed."""
        sides: dict[str, list[int]] = {StudyImage.Side.REAL: [], StudyImage.Side.SYNTHETIC: []}
        for pk, side in self.images.values_list("pk", "side"):
            sides[side].append(pk)
        return forced_choice_trials(
            sides[StudyImage.Side.REAL],
            sides[StudyImage.Side.SYNTHETIC],
            alternatives=self.alternatives,
            seed=self.seed,
        )

    @property
    def n_readings(self) -> int:
        """Answers the informed phase asks of each rater: one per image or per trial."""
        if self.is_forced_choice:
            return self.images.filter(side=StudyImage.Side.SYNTHETIC).count()
        return self.n_images

    @property
    def n_tasks(self) -> int:
        """Answers each rater gives in all: quality scores, then readings."""
        return self.n_readings + (self.n_images if self.uninformed_phase else 0)

    def close(self) -> None:
        """Close the study (no more responses), flag confidently recognised cases and, for a
        study that is not training, record its figures on the generator's card."""
        from turing.card import record_on_card  # the card's figures come from the results

        with transaction.atomic():
            updated = TuringStudy.objects.filter(pk=self.pk, status=self.Status.OPEN).update(
                status=self.Status.CLOSED, closed_at=timezone.now()
            )
            self.refresh_from_db()
            if updated:
                CaseFlag.flag_recognised_cases(self)
                if not self.training:
                    record_on_card(self)


@dataclass(frozen=True)
class Feedback:
    """What a training study tells a rater after an answer."""

    correct: bool
    answer: str  # what the rater said
    truth: str  # what was so
    image_ids: tuple[int, ...]  # the images answered on, in screen order
    labels: tuple[str, ...]  # each with its truth


class StudyRater(models.Model):
    study = models.ForeignKey(TuringStudy, on_delete=models.CASCADE, related_name="rater_set")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    experience_years = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(70)],
        help_text="Years of reading experience, as the rater gave it (optional).",
    )
    order_seed = models.BigIntegerField(default=new_seed)
    started_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("study", "user__username")
        constraints = [
            models.UniqueConstraint(fields=("study", "user"), name="one_rater_row_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.study}"

    class Phase(models.TextChoices):
        QUALITY = "quality"  # the uninformed phase
        READING = "reading"  # the informed phase, single images or trials
        DONE = "done"

    def order(self) -> list[int]:
        """The study image ids in this rater's own order, drawn from ``order_seed``."""
        ids = sorted(self.study.images.values_list("pk", flat=True))
        permutation = np.random.default_rng(self.order_seed).permutation(len(ids))
        return [ids[i] for i in permutation]

    def quality_order(self) -> list[int]:
        """The image ids in the uninformed phase: another order than the informed phase's,
        so the second reading does not replay the first."""
        ids = sorted(self.study.images.values_list("pk", flat=True))
        permutation = np.random.default_rng([self.order_seed, 1]).permutation(len(ids))
        return [ids[i] for i in permutation]

    def trial_order(self) -> list[int]:
        """Indexes into ``study.trials()`` in this rater's own order."""
        n_trials = self.study.n_readings
        return [int(i) for i in np.random.default_rng(self.order_seed).permutation(n_trials)]

    def phase(self) -> str:
        study = self.study
        if study.uninformed_phase and self.quality_ratings.count() < study.n_images:
            return self.Phase.QUALITY
        answers = self.trial_responses if study.is_forced_choice else self.responses
        return self.Phase.READING if answers.count() < study.n_readings else self.Phase.DONE

    @property
    def title_for_rater(self) -> str:
        """The study's title, or a neutral one until the uninformed phase is over (a title
        may say that synthetic images are present)."""
        if self.study.uninformed_phase and self.phase() == self.Phase.QUALITY:
            return "Image quality study"
        return self.study.title

    def feedback(self, position: int) -> Feedback | None:
        """Feedback on the informed answer at ``position`` (1-based); None when that
        position is not answered (or does not exist)."""
        if self.study.is_forced_choice:
            return self._trial_feedback(position)
        order = self.order()
        if not 1 <= position <= len(order):
            return None
        response = self.responses.filter(image_id=order[position - 1]).first()
        if response is None:
            return None
        side = response.image.side
        called = "synthetic" if response.called_synthetic else "real"
        return Feedback(
            correct=response.called_synthetic == response.image.is_synthetic,
            answer=f"You called this image {called}.",
            truth=f"It is {side}.",
            image_ids=(response.image_id,),
            labels=(f"This image: {side}",),
        )

    def _trial_feedback(self, position: int) -> Feedback | None:
        order = self.trial_order()
        if not 1 <= position <= len(order):
            return None
        response = self.trial_responses.filter(trial=order[position - 1]).first()
        if response is None:
            return None
        shown = self.study.trials()[response.trial]
        sides = dict(self.study.images.filter(pk__in=shown).values_list("pk", "side"))
        synthetic = next(i for i, pk in enumerate(shown) if sides[pk] == StudyImage.Side.SYNTHETIC)
        return Feedback(
            correct=response.correct,
            answer=f"You picked image {LETTERS[shown.index(response.chosen_id)]}.",
            truth=f"Image {LETTERS[synthetic]} is the synthetic one.",
            image_ids=shown,
            labels=tuple(f"Image {LETTERS[i]}: {sides[pk]}" for i, pk in enumerate(shown)),
        )

    def answered_ids(self) -> set[int]:
        return set(self.responses.values_list("image_id", flat=True))

    def next_position(self, order: list[int] | None = None) -> int | None:
        """1-based position of the first unanswered image; None when all are answered."""
        order = order if order is not None else self.order()
        answered = self.answered_ids()
        return next((i + 1 for i, pk in enumerate(order) if pk not in answered), None)

    def next_quality_position(self, order: list[int]) -> int | None:
        rated = set(self.quality_ratings.values_list("image_id", flat=True))
        return next((i + 1 for i, pk in enumerate(order) if pk not in rated), None)

    def next_trial_position(self, order: list[int]) -> int | None:
        answered = set(self.trial_responses.values_list("trial", flat=True))
        return next((i + 1 for i, trial in enumerate(order) if trial not in answered), None)


class StudyImage(models.Model):
    class Side(models.TextChoices):
        REAL = "real"
        SYNTHETIC = "synthetic"

    study = models.ForeignKey(TuringStudy, on_delete=models.CASCADE, related_name="images")
    token = models.CharField(max_length=32, unique=True, default=new_token)
    side = models.CharField(max_length=16, choices=Side.choices)
    instance = models.ForeignKey(Instance, null=True, blank=True, on_delete=models.PROTECT)
    reference = models.ForeignKey(ReferenceImage, null=True, blank=True, on_delete=models.PROTECT)
    blinded = models.FileField(max_length=300, upload_to="turing/")
    blinded_size = models.PositiveIntegerField()

    class Meta:
        ordering = ("study", "pk")
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(side="synthetic", instance__isnull=False, reference__isnull=True)
                    | Q(side="real", instance__isnull=True, reference__isnull=False)
                ),
                name="study_image_source_matches_side",
            ),
        ]

    def __str__(self) -> str:
        return f"image {self.token} of {self.study}"

    def get_absolute_url(self) -> str:
        return reverse("turing:image", args=[self.token])

    @property
    def is_synthetic(self) -> bool:
        return self.side == self.Side.SYNTHETIC

    def source_identifier(self) -> str:
        """Where the image came from, for the results export (never shown before closing)."""
        if self.instance_id is not None:
            patient = self.instance.series.study.patient
            return (
                f"case {patient.patient_id} job {patient.job_id} "
                f"sop {self.instance.sop_instance_uid} seed {self.instance.seed}"
            )
        return f"pool {self.reference.pool.name} {self.reference.source_name} " + (
            f"sop {self.reference.sop_instance_uid}"
        )


class Response(models.Model):
    rater = models.ForeignKey(StudyRater, on_delete=models.CASCADE, related_name="responses")
    image = models.ForeignKey(StudyImage, on_delete=models.CASCADE, related_name="responses")
    called_synthetic = models.BooleanField()
    confidence = one_to_five()
    realism = one_to_five(null=True, blank=True)
    comment = models.TextField(blank=True)
    time_on_image_ms = models.PositiveIntegerField(
        help_text="Time the image was on screen before the answer, summed over visits."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("rater", "created_at")
        constraints = [
            models.UniqueConstraint(fields=("rater", "image"), name="one_response_per_image"),
        ]

    def __str__(self) -> str:
        return f"{self.rater.user} on {self.image.token}"

    @classmethod
    def record(
        cls, *, rater: StudyRater, image: StudyImage, time_ms: int, **answer: Any
    ) -> Response:
        """Save a rater's answer (a later answer replaces an earlier one; time adds up)."""
        if image.study_id != rater.study_id:
            raise ValidationError("the image is not part of this rater's study")
        return _save_answer(cls, {"rater": rater, "image": image}, time_ms, answer)


def _save_answer(model: type[models.Model], key: dict[str, Any], time_ms: int, answer: dict):
    """Save the answer of ``model`` identified by ``key`` (its rater and image or trial) in
    its open study: a later answer replaces an earlier one, and the time on screen adds up."""
    with transaction.atomic():
        study = TuringStudy.objects.select_for_update().get(pk=key["rater"].study_id)
        if study.is_closed:
            raise ValidationError("the study is closed")
        row = model.objects.filter(**key).first() or model(**key, time_on_image_ms=0)
        for name, value in answer.items():
            setattr(row, name, value)
        row.time_on_image_ms += time_ms
        row.full_clean()
        row.save()
    return row


class QualityRating(models.Model):
    """An image-quality score given in the uninformed phase, before the rater was told that
    some images are synthetic."""

    rater = models.ForeignKey(StudyRater, on_delete=models.CASCADE, related_name="quality_ratings")
    image = models.ForeignKey(StudyImage, on_delete=models.CASCADE, related_name="quality_ratings")
    quality = one_to_five()
    time_on_image_ms = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("rater", "created_at")
        constraints = [
            models.UniqueConstraint(fields=("rater", "image"), name="one_quality_per_image"),
        ]

    def __str__(self) -> str:
        return f"quality {self.quality} by {self.rater.user} on {self.image.token}"

    @classmethod
    def record(
        cls, *, rater: StudyRater, image: StudyImage, quality: int, time_ms: int
    ) -> QualityRating:
        if image.study_id != rater.study_id:
            raise ValidationError("the image is not part of this rater's study")
        return _save_answer(cls, {"rater": rater, "image": image}, time_ms, {"quality": quality})


class TrialResponse(models.Model):
    """A rater's pick in a forced-choice trial (``trial`` indexes ``study.trials()``)."""

    rater = models.ForeignKey(StudyRater, on_delete=models.CASCADE, related_name="trial_responses")
    trial = models.PositiveIntegerField()
    chosen = models.ForeignKey(StudyImage, on_delete=models.CASCADE, related_name="choices")
    correct = models.BooleanField()
    time_on_image_ms = models.PositiveIntegerField(
        help_text="Time the trial's images were on screen before the answer, summed over visits."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("rater", "created_at")
        constraints = [
            models.UniqueConstraint(fields=("rater", "trial"), name="one_response_per_trial"),
        ]

    def __str__(self) -> str:
        return f"{self.rater.user} on trial {self.trial}"

    @classmethod
    def record(
        cls, *, rater: StudyRater, trial: int, shown: tuple[int, ...], pick: int, time_ms: int
    ) -> TrialResponse:
        """Save the pick of the ``pick``-th image (0-based) of ``shown``, the trial's images."""
        if not 0 <= pick < len(shown):
            raise ValidationError("pick one of the trial's images")
        chosen = StudyImage.objects.get(pk=shown[pick])
        correct = chosen.is_synthetic == rater.study.picks_synthetic
        answer = {"chosen": chosen, "correct": correct}
        return _save_answer(cls, {"rater": rater, "trial": trial}, time_ms, answer)


class CaseFlag(models.Model):
    """A synthetic case that most raters of a study called synthetic with high confidence."""

    study = models.ForeignKey(TuringStudy, on_delete=models.CASCADE, related_name="flags")
    case = models.ForeignKey(SyntheticPatient, on_delete=models.CASCADE, related_name="flags")
    images_flagged = models.PositiveIntegerField()
    images_in_study = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=("study", "case"), name="one_flag_per_study_case"),
        ]

    def __str__(self) -> str:
        return f"{self.case.patient_id} recognised in {self.study}"

    @classmethod
    def flag_recognised_cases(cls, study: TuringStudy) -> list[CaseFlag]:
        """Flag every case with an image that a strict majority of its readers called
        synthetic with confidence >= ``CONFIDENCE_HIGH``."""
        per_case: dict[int, list[bool]] = {}
        images = study.images.filter(side=StudyImage.Side.SYNTHETIC).select_related(
            "instance__series__study"
        )
        for image in images.prefetch_related("responses"):
            responses = list(image.responses.all())
            confident = sum(
                r.called_synthetic and r.confidence >= CONFIDENCE_HIGH for r in responses
            )
            case_id = image.instance.series.study.patient_id
            per_case.setdefault(case_id, []).append(
                bool(responses) and confident * 2 > len(responses)
            )
        return [
            cls.objects.update_or_create(
                study=study,
                case_id=case_id,
                defaults={"images_flagged": sum(flags), "images_in_study": len(flags)},
            )[0]
            for case_id, flags in per_case.items()
            if any(flags)
        ]
