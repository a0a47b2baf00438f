"""Expert reviews and curation, quizzes with their questions, attempts and answers; spaced
practice of concepts (a template's finding at a difficulty level) on cases never seen.

The keys of every question (correct option, true order, lesion masks, severities) come
from the case itself or from the question row; none of them is ever serialised for a
trainee before the answer is revealed (see ``edu.trainee_view``).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import IntegrityError, models, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Now
from django.urls import reverse
from django.utils import timezone

from cases.models import CaseTemplate, GenerationJob, Operation, SyntheticPatient
from edu import curation, difficulty, scoring, signals, spacing

APPLY_RULE_TASK = "edu.tasks.apply_curation_rule"

SCORE_1_TO_5 = [MinValueValidator(1), MaxValueValidator(5)]


class Review(models.Model):
    """One expert's review of one case; editing it re-applies the curation rule."""

    class Finding(models.TextChoices):
        YES = "yes"
        NO = "no"
        UNSURE = "unsure"

    case = models.ForeignKey(SyntheticPatient, on_delete=models.CASCADE, related_name="reviews")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    realism = models.PositiveSmallIntegerField(validators=SCORE_1_TO_5)
    shows_finding = models.CharField(max_length=8, choices=Finding.choices)
    teaching_value = models.PositiveSmallIntegerField(validators=SCORE_1_TO_5)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("case", "expert")
        permissions = [("review_case", "Review synthetic cases")]
        constraints = [
            models.UniqueConstraint(fields=("case", "expert"), name="one_review_per_expert"),
            models.CheckConstraint(
                condition=Q(realism__gte=1, realism__lte=5), name="realism_1_to_5"
            ),
            models.CheckConstraint(
                condition=Q(teaching_value__gte=1, teaching_value__lte=5),
                name="teaching_value_1_to_5",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.expert} on {self.case}"

    @classmethod
    def submit(cls, *, case: SyntheticPatient, expert: Any, **fields: Any) -> Review:
        """Create or edit ``expert``'s review of ``case`` and decide the case's status."""
        with transaction.atomic():
            locked = SyntheticPatient.objects.select_for_update().get(pk=case.pk)
            review = cls.objects.filter(case=locked, expert=expert).first() or cls(
                case=locked, expert=expert
            )
            for name, value in fields.items():
                setattr(review, name, value)
            review.full_clean(exclude=("case", "expert"))
            review.save()
            CurationRule.for_template(locked.template_version.template).apply(locked)
        return review


class CurationRule(models.Model):
    """When a template's cases are approved; the defaults apply to templates without one."""

    template = models.OneToOneField(
        CaseTemplate, on_delete=models.CASCADE, related_name="curation_rule"
    )
    min_reviews = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1)])
    min_mean_realism = models.FloatField(
        default=3.5, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    finding_confirmed_by_all = models.BooleanField(default=True)

    class Meta:
        permissions = [("curate_cases", "Set when generated cases are approved")]

    def __str__(self) -> str:
        return f"curation rule of {self.template}"

    @classmethod
    def for_template(cls, template: CaseTemplate) -> CurationRule:
        return cls.objects.filter(template=template).first() or cls(template=template)

    def as_rule(self) -> curation.Rule:
        return curation.Rule(self.min_reviews, self.min_mean_realism, self.finding_confirmed_by_all)

    def cases(self) -> QuerySet[SyntheticPatient]:
        """The template's cases (normal twins are not reviewed: they follow their case)."""
        return SyntheticPatient.objects.cases().filter(template_version__template=self.template)

    def apply_to_cases(self) -> dict[str, int]:
        """Decide the status of every case of the template again under this rule, in one
        transaction that holds the cases' rows (as a review does its case's): the rule is
        applied to every case or to none. Returns how many cases moved to each status."""
        moved: dict[str, list[int]] = {}
        with transaction.atomic():
            locked = self.cases().select_for_update(of=("self",))
            for case in locked.prefetch_related("reviews"):
                votes = [curation.Vote(r.realism, r.shows_finding) for r in case.reviews.all()]
                status = curation.decide(self.as_rule(), votes)
                if status != case.status:
                    moved.setdefault(status, []).append(case.pk)
            for status, pks in moved.items():
                SyntheticPatient.objects.filter(pk__in=pks).update(status=status)
        return {status: len(pks) for status, pks in moved.items()}

    def launch_apply(self, *, user: Any) -> Operation:
        """Queue ``apply_to_cases`` as a background operation on the cpu queue."""
        return Operation.launch(
            task=APPLY_RULE_TASK,
            title=f"Applying the curation rule of {self.template}",
            user=user,
            params={"rule": self.pk, "back": reverse("edu:curation")},
            total=self.cases().count(),
        )

    @classmethod
    def run_apply(cls, operation: Operation) -> dict[str, Any]:
        """The task's work: apply the rule; the result says how many cases moved where."""
        moved = cls.objects.get(pk=operation.params["rule"]).apply_to_cases()
        words = ", ".join(f"{n} to {status.replace('_', ' ')}" for status, n in moved.items())
        return {
            "summary": f"Applied to {operation.total} case(s); "
            f"{words or 'no case changed status'}.",
            "moved": moved,
            "link": reverse("edu:curation"),
            "link_text": "Back to curation",
        }

    def votes(self, case: SyntheticPatient) -> list[curation.Vote]:
        return [curation.Vote(r.realism, r.shows_finding) for r in case.reviews.all()]

    def explain(self, case: SyntheticPatient) -> str:
        """Why the case has its status, in a sentence."""
        if ManualApproval.objects.filter(case=case).exists():
            return "Approved by hand by an educator."
        return curation.explain(self.as_rule(), self.votes(case))

    def apply(self, case: SyntheticPatient) -> str:
        """Decide the case's status from its reviews; one approved by hand stays approved."""
        if ManualApproval.objects.filter(case=case).exists():
            return case.status
        status = curation.decide(self.as_rule(), self.votes(case))
        if status != case.status:
            SyntheticPatient.objects.filter(pk=case.pk).update(status=status)
            case.status = status
        return status


class ManualApproval(models.Model):
    """An educator's approval of a case for teaching without the reviews the curation rule
    asks for (a site with fewer experts than the rule needs). Later reviews are kept but no
    longer change the case's status."""

    case = models.OneToOneField(
        SyntheticPatient, on_delete=models.CASCADE, related_name="manual_approval"
    )
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    approved_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.case} approved by {self.approved_by}"

    @classmethod
    def approve(cls, *, case: SyntheticPatient, by: Any) -> ManualApproval:
        with transaction.atomic():
            locked = SyntheticPatient.objects.select_for_update().get(pk=case.pk)
            approval, _ = cls.objects.get_or_create(case=locked, defaults={"approved_by": by})
            SyntheticPatient.objects.filter(pk=locked.pk).update(
                status=SyntheticPatient.Status.APPROVED
            )
        case.status = SyntheticPatient.Status.APPROVED
        return approval


class QuizQuerySet(QuerySet):
    def for_trainee(self, user: Any) -> QuizQuerySet:
        """Published quizzes of the trainee's cohorts (open or not)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(is_published=True, cohort__in=user.groups.all()).current()

    def current(self) -> QuizQuerySet:
        """Quizzes no published newer version has replaced."""
        return self.exclude(next_version__is_published=True)

    def authored_by(self, user: Any) -> QuizQuerySet:
        """Quizzes ``user`` owns or co-authors (the ones ``edu.edit_quiz`` lets them edit)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(Q(created_by=user) | Q(co_authors=user)).distinct()

    def for_reference_readers(self) -> QuizQuerySet:
        """Quizzes an expert may read as a reference reader: published ones, and drafts whose
        educator invited reference readers."""
        return self.filter(Q(is_published=True) | Q(invite_reference_readers=True))


class Quiz(models.Model):
    class Mode(models.TextChoices):
        PRACTICE = "practice", "practice (immediate feedback)"
        EXAM = "exam", "exam (feedback at the end)"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PRACTICE)
    time_limit_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Exam mode only; empty for no limit."
    )
    allow_back = models.BooleanField(
        default=True, help_text="Exam mode: may trainees change an answer before finishing?"
    )
    shuffle = models.BooleanField(default=False, help_text="A new item order per attempt.")
    unknown_case = models.BooleanField(
        default=True, help_text="Hide the history until the item is answered."
    )
    normal_twin_rate = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="'Is this normal?' items: the share of attempts shown the case's normal twin "
        "(0 to 1).",
    )
    cohort = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT)
    opens_at = models.DateTimeField(null=True, blank=True)
    closes_at = models.DateTimeField(null=True, blank=True)
    is_published = models.BooleanField(default=False)
    invite_reference_readers = models.BooleanField(
        default=False,
        help_text="Let experts read this quiz as reference readers before it is published.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, help_text="The owner."
    )
    co_authors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="co_authored_quizzes",
        help_text="Educators who may edit the quiz and read its results besides its owner.",
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    previous_version = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="next_version",
        help_text="The published version this one replaces once it is published.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = QuizQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "quizzes"
        permissions = [
            ("manage_quiz", "Author quizzes and read the results of one's own"),
            ("read_reference", "Read quizzes as a reference reader"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("edu:quiz-edit", args=[self.pk])

    def is_author(self, user: Any) -> bool:
        """The owner or a co-author."""
        return user.pk is not None and (
            self.created_by_id == user.pk or self.co_authors.filter(pk=user.pk).exists()
        )

    @property
    def is_exam(self) -> bool:
        return self.mode == self.Mode.EXAM

    @property
    def replaced_by(self) -> Quiz | None:
        """The published newer version that replaced this one, if any."""
        return Quiz.objects.filter(previous_version=self, is_published=True).first()

    def is_open(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return (
            self.is_published
            and self.replaced_by is None
            and (self.opens_at is None or self.opens_at <= now)
            and (self.closes_at is None or now < self.closes_at)
        )

    def clean(self) -> None:
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValidationError({"closes_at": "the quiz must close after it opens"})
        if self.is_published:
            self.check_publishable()

    def check_publishable(self) -> None:
        """Raise ValidationError unless the quiz may be (or stay) published."""
        problems = []
        if self.cohort_id is None:
            problems.append("choose the cohort (group) the quiz is for")
        items = list(self.items.select_related("case").prefetch_related("questions"))
        if not items:
            problems.append("add at least one item")
        for item in items:
            if item.case.status != SyntheticPatient.Status.APPROVED:
                problems.append(f"case {item.case.patient_id} is not approved")
            if not item.questions.all():
                problems.append(f"item {item.order} ({item.case.patient_id}) has no question")
        if problems:
            raise ValidationError(problems)

    def publish(self) -> None:
        """Publish the quiz: from now on its items and questions are frozen, so that every
        attempt is scored on what it was shown. A new version of a published quiz replaces
        it for new attempts; attempts of the old one keep their items and scores."""
        with transaction.atomic():
            locked = Quiz.objects.select_for_update().get(pk=self.pk)
            locked.check_publishable()
            Quiz.objects.filter(pk=self.pk).update(is_published=True)
        self.is_published = True

    def new_version(self) -> Quiz:
        """The draft that edits this published quiz: a copy of its settings, items and
        questions (the existing draft, if one was begun). Publishing it replaces this one."""
        if not self.is_published:
            raise ValidationError("a draft is edited as it is; only a published quiz is versioned")
        with transaction.atomic():
            Quiz.objects.select_for_update().get(pk=self.pk)
            existing = Quiz.objects.filter(previous_version=self).first()
            if existing is not None:
                return existing
            draft = Quiz.objects.get(pk=self.pk)
            draft.pk = None
            draft.is_published = False
            draft.version = self.version + 1
            draft.previous_version = self
            draft.save()
            draft.co_authors.set(self.co_authors.all())
            for item in self.items.order_by("order", "pk").prefetch_related("questions"):
                copy = QuizItem.objects.create(quiz=draft, case=item.case, order=item.order)
                Question.objects.bulk_create(
                    [
                        Question(
                            item=copy,
                            **{
                                f.name: getattr(q, f.name)
                                for f in Question._meta.concrete_fields
                                if f.name not in ("id", "item")
                            },
                        )
                        for q in item.questions.all()
                    ]
                )
        return draft

    def _lock_draft(self) -> list[QuizItem]:
        """Lock the quiz row (publishing takes the same lock) and return its items in order;
        a published quiz's items are fixed. Call inside a transaction."""
        if Quiz.objects.select_for_update().get(pk=self.pk).is_published:
            raise ValidationError("the quiz is published: its items can no longer be changed")
        return list(self.items.order_by("order", "pk"))

    def item_position(self, item_pk: int) -> int:
        """The 0-based position of the item; ``QuizItem.DoesNotExist`` if it is not here."""
        ids = list(self.items.order_by("order", "pk").values_list("pk", flat=True))
        if item_pk not in ids:
            raise QuizItem.DoesNotExist("no such item in this quiz")
        return ids.index(item_pk)

    def move_item(self, item_pk: int, position: int) -> None:
        """Put the item at ``position`` (0 = first, clamped) and renumber the items 0..n-1."""
        with transaction.atomic():
            items = self._lock_draft()
            item = next((i for i in items if i.pk == item_pk), None)
            if item is None:
                raise ValidationError("no such item in this quiz")
            items.remove(item)
            items.insert(max(0, min(position, len(items))), item)
            _renumber(items)

    def remove_item(self, item_pk: int) -> None:
        """Delete the item (its questions, and any answers to them, go with it)."""
        with transaction.atomic():
            items = self._lock_draft()
            item = next((i for i in items if i.pk == item_pk), None)
            if item is None:
                raise ValidationError("no such item in this quiz")
            items.remove(item)
            item.delete()
            _renumber(items)


def _renumber(items: list[QuizItem]) -> None:
    for order, item in enumerate(items):
        if item.order != order:
            QuizItem.objects.filter(pk=item.pk).update(order=order)
            item.order = order


FROZEN = (
    "the quiz is published and frozen, so that finished attempts keep their score: "
    "edit a new version of it instead"
)


class QuizItem(models.Model):
    """One case in a quiz; its questions are asked together over the case's images."""

    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="items")
    case = models.ForeignKey(SyntheticPatient, on_delete=models.PROTECT, related_name="+")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("quiz", "order", "pk")
        constraints = [
            models.UniqueConstraint(fields=("quiz", "case"), name="one_item_per_case"),
        ]

    def __str__(self) -> str:
        return f"{self.quiz} #{self.order}: {self.case.patient_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.clean()  # the rule holds for every path that saves an item, not only forms
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.case.twin_of_id is not None:
            raise ValidationError(
                {"case": "a normal twin is not an item: ask a twin question of its case"}
            )
        if self.quiz.is_published and self._state.adding:
            raise ValidationError(FROZEN)

    @property
    def layout(self) -> str:
        """How the item's images are shown, which its questions decide (``Question.LAYOUTS``):
        every timepoint in time order unless a question needs another layout."""
        for question in self.questions.all():
            if question.kind in Question.LAYOUTS:
                return Question.LAYOUTS[question.kind]
        return Question.Layout.SERIES

    @property
    def shuffles_images(self) -> bool:
        """A staging question shows the timepoints shuffled (and unlabelled)."""
        return self.layout == Question.Layout.SHUFFLED


class Question(models.Model):
    class Kind(models.TextChoices):
        SINGLE_BEST = "single_best", "single best answer"
        STAGING = "staging", "order the timepoints"
        LOCALISATION = "localisation", "click the lesion"
        SEVERITY = "severity", "estimate the severity"
        FREE_TEXT = "free_text", "free text (graded by hand)"
        WHICH_ABNORMAL = "which_abnormal", "which of these is abnormal? (case and normal twin)"
        CHANGE = "change", "what changed since the prior? (grew, shrank, unchanged)"
        IS_NORMAL = "is_normal", "is this normal? (normal twins mixed in)"

    class Layout(models.TextChoices):
        SERIES = "series", "every timepoint in time order"
        SHUFFLED = "shuffled", "every timepoint, shuffled and unlabelled"
        PAIR = "pair", "the case and its normal twin at one timepoint, in random order"
        PRIOR = "prior", "two timepoints side by side: the prior and the current study"
        CASE_OR_TWIN = "case_or_twin", "every timepoint of the case or of its normal twin"

    # Question kinds that decide how their item's images are shown; the others fit any.
    LAYOUTS = {
        Kind.STAGING: Layout.SHUFFLED,
        Kind.WHICH_ABNORMAL: Layout.PAIR,
        Kind.CHANGE: Layout.PRIOR,
        Kind.IS_NORMAL: Layout.CASE_OR_TWIN,
    }
    # What else an item that may show the normal twin instead of its case can ask.
    TWIN_SAFE_KINDS = (Kind.IS_NORMAL, Kind.FREE_TEXT)

    class KeySource(models.TextChoices):
        BUILT_IN = "built_in", "built in (the case's ground truth; free text graded by hand)"
        REFERENCE = "reference", "reference readers (free text: majority; severity: median)"

    # Question kinds whose key may come from the reference readers' answers.
    REFERENCE_KINDS = (Kind.FREE_TEXT, Kind.SEVERITY)

    item = models.ForeignKey(QuizItem, on_delete=models.CASCADE, related_name="questions")
    order = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    prompt = models.TextField()
    options = models.JSONField(
        default=list, blank=True, help_text='Single best answer: [{"text", "correct", "feedback"}]'
    )
    tolerance = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0)],
        help_text="Severity: allowed error (0 to 1 scale).",
    )
    tolerance_mm = models.FloatField(
        default=scoring.DEFAULT_TOLERANCE_MM,
        validators=[MinValueValidator(0)],
        verbose_name="tolerance (mm)",
        help_text="Localisation: how far outside the lesion's edge a click still counts, in mm.",
    )
    points = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    explanation = models.TextField(blank=True, help_text="Teaching point shown with feedback.")
    key_source = models.CharField(
        max_length=16,
        choices=KeySource.choices,
        default=KeySource.BUILT_IN,
        help_text="Free text and severity: what trainees' answers are scored against.",
    )
    prior_study = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="What changed since the prior: the prior study (1 = the case's first); "
        "empty: the one before the last.",
    )
    current_study = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="What changed since the prior: the current study; empty: the last.",
    )

    class Meta:
        ordering = ("item", "order", "pk")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.prompt[:40]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and self.item.quiz.is_published:
            raise ValidationError(FROZEN)
        super().save(*args, **kwargs)

    @property
    def uses_reference(self) -> bool:
        return self.key_source == self.KeySource.REFERENCE

    def clean(self) -> None:
        if self._state.adding and self.item.quiz.is_published:
            raise ValidationError(FROZEN)
        if self.uses_reference and self.kind not in self.REFERENCE_KINDS:
            raise ValidationError(
                {"key_source": "only free text and severity questions take a reference standard"}
            )
        if self.kind == self.Kind.SINGLE_BEST:
            valid = isinstance(self.options, list) and all(
                isinstance(o, dict) and isinstance(o.get("text"), str) for o in self.options
            )
            if not valid or len(self.options) < 2:
                raise ValidationError({"options": "give at least two options, each with a text"})
            if sum(bool(o.get("correct")) for o in self.options) != 1:
                raise ValidationError({"options": "exactly one option must be correct"})
        if self.kind == self.Kind.STAGING and self.item.case.studies.count() < 2:
            raise ValidationError({"kind": "staging needs a case with two or more timepoints"})
        if self.kind == self.Kind.LOCALISATION and not ground_truth_exists(self.item.case):
            raise ValidationError({"kind": no_mask_reason(self.item.case)})
        needs_twin = (self.Kind.WHICH_ABNORMAL, self.Kind.IS_NORMAL)
        if self.kind in needs_twin and not has_normal_twin(self.item.case):
            raise ValidationError({"kind": "this case has no normal twin"})
        if self.kind == self.Kind.CHANGE:
            self._check_compared_studies()
        self._check_fits_item()

    def compared_studies(self, n_studies: int) -> tuple[int, int]:
        """The 0-based timepoints a "what changed" question compares in a case of
        ``n_studies``: its prior and current study, by default the last two."""
        current = (self.current_study or n_studies) - 1
        prior = self.prior_study - 1 if self.prior_study else current - 1
        return prior, current

    def _check_compared_studies(self) -> None:
        n_studies = self.item.case.studies.count()
        prior, current = self.compared_studies(n_studies)
        if n_studies < 2:
            raise ValidationError({"kind": "comparing with the prior needs two or more studies"})
        if not 0 <= prior < current < n_studies:
            raise ValidationError(
                {
                    "prior_study": f"the prior must come before the current study, both 1 to "
                    f"{n_studies}"
                }
            )
        if not ground_truth_exists(self.item.case):
            raise ValidationError({"kind": "this case has no lesion measurements to compare"})

    def _check_fits_item(self) -> None:
        """One layout per item, and nothing asked of an item that may show the normal twin
        but what a twin can answer."""
        others = [q for q in self.item.questions.all() if q.pk != self.pk]
        layout = self.LAYOUTS.get(self.kind)
        for other in others:
            other_layout = self.LAYOUTS.get(other.kind)
            if layout and other_layout and layout != other_layout:
                raise ValidationError(
                    {
                        "kind": f"this item's images are shown as {other_layout.label} for its "
                        f"{other.get_kind_display()} question"
                    }
                )
            if other.kind == self.Kind.CHANGE and self.kind == self.Kind.CHANGE:
                n_studies = self.item.case.studies.count()
                if other.compared_studies(n_studies) != self.compared_studies(n_studies):
                    raise ValidationError(
                        {"prior_study": "this item already compares two other studies"}
                    )
        kinds = {self.kind, *(q.kind for q in others)}
        if self.Kind.IS_NORMAL in kinds and not kinds <= set(self.TWIN_SAFE_KINDS):
            raise ValidationError(
                {
                    "kind": "an item asking 'is this normal?' may show the normal twin: it can ask "
                    "free text questions besides, nothing else"
                }
            )


def has_normal_twin(case: SyntheticPatient) -> bool:
    return SyntheticPatient.objects.filter(twin_of=case).exists()


def ground_truth_exists(case: SyntheticPatient) -> bool:
    from cases.models import LesionGroundTruth

    return LesionGroundTruth.objects.filter(
        image__series__study__patient=case, area_pixels__gt=0
    ).exists()


def no_mask_reason(case: SyntheticPatient) -> str:
    """Why a case has no lesion mask to click: its generator gives none (no segmenter), or
    its images show no lesion."""
    generator = case.template_version.generator
    if generator.model_card.get("masks") is False:
        return (
            f"this case has no lesion mask to click: its generator {generator.title} has no "
            "segmenter, so its cases carry no ground truth"
        )
    return "this case has no lesion mask to click"


class AttemptError(ValueError):
    """An answer or action the attempt refuses (finished, past its deadline, wrong item)."""


class Attempt(models.Model):
    """One trainee's pass through a quiz (or a retry of the items they got wrong), or an
    expert's reference reading of it (``is_reference``): kept apart from trainees' results,
    its answers can be the key of questions without a built-in ground truth."""

    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="attempts")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attempts"
    )
    is_exam = models.BooleanField(help_text="Feedback only at the end; one per trainee.")
    is_reference = models.BooleanField(
        default=False, help_text="An expert's reference reading: not a trainee's result."
    )
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="retries"
    )
    item_ids = models.JSONField(help_text="QuizItem ids in the order this attempt shows them.")
    seed = models.BigIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    shown_at = models.JSONField(default=dict, help_text="item id -> when it was first shown.")

    class Meta:
        ordering = ("-started_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("quiz", "user"), condition=Q(is_exam=True), name="one_exam_attempt"
            ),
            models.UniqueConstraint(
                fields=("quiz", "user"),
                condition=Q(is_reference=True),
                name="one_reference_reading",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.quiz} ({self.started_at:%Y-%m-%d %H:%M})"

    @classmethod
    def start(cls, *, quiz: Quiz, user: Any, retry_of: Attempt | None = None) -> Attempt:
        """A new attempt; in exam mode the trainee's existing one is returned instead."""
        if not quiz.is_open():
            raise AttemptError("the quiz is not open")
        if retry_of is not None and retry_of.is_reference:
            raise AttemptError("a reference reading is not retried")
        if retry_of is not None:
            items = retry_of.wrong_item_ids()
            if not items:
                raise AttemptError("nothing to retry: every item was answered right")
            return cls.objects.create(
                quiz=quiz,
                user=user,
                is_exam=False,
                retry_of=retry_of,
                item_ids=items,
                seed=random.randrange(2**31),
            )
        ids = list(quiz.items.values_list("pk", flat=True))
        seed = random.randrange(2**31)
        if quiz.shuffle:
            random.Random(seed).shuffle(ids)
        if not quiz.is_exam:
            return cls.objects.create(quiz=quiz, user=user, is_exam=False, item_ids=ids, seed=seed)
        try:
            with transaction.atomic():
                return cls.objects.create(
                    quiz=quiz, user=user, is_exam=True, item_ids=ids, seed=seed
                )
        except IntegrityError:
            return cls.objects.get(quiz=quiz, user=user, is_exam=True)

    @classmethod
    def start_reference(cls, *, quiz: Quiz, user: Any) -> Attempt:
        """An expert's reference reading (one per expert and quiz, resumed when begun).

        Items come in the quiz's order; an unfinished reading follows later edits of a draft.
        """
        ids = list(quiz.items.order_by("order", "pk").values_list("pk", flat=True))
        try:
            with transaction.atomic():
                return cls.objects.create(
                    quiz=quiz,
                    user=user,
                    is_exam=False,
                    is_reference=True,
                    item_ids=ids,
                    seed=random.randrange(2**31),
                )
        except IntegrityError:
            attempt = cls.objects.get(quiz=quiz, user=user, is_reference=True)
        if not attempt.is_finished and attempt.item_ids != ids:
            attempt.item_ids = ids
            Attempt.objects.filter(pk=attempt.pk).update(item_ids=ids)
        return attempt

    @property
    def feedback_at_end(self) -> bool:
        """Exams and reference readings show no score or key until they are finished."""
        return self.is_exam or self.is_reference

    @property
    def deadline(self) -> datetime | None:
        if not self.is_exam or not self.quiz.time_limit_minutes:
            return None
        return self.started_at + timedelta(minutes=self.quiz.time_limit_minutes)

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None

    @property
    def timed_out(self) -> bool:
        """Finished by its deadline rather than by the trainee."""
        deadline = self.deadline
        return deadline is not None and self.is_finished and self.finished_at >= deadline

    def seconds_left(self, now: datetime | None = None) -> float | None:
        if self.deadline is None or self.is_finished:
            return None
        return max(0.0, (self.deadline - (now or timezone.now())).total_seconds())

    def expire_if_due(self, now: datetime | None = None) -> None:
        now = now or timezone.now()
        if not self.is_finished and self.deadline is not None and now >= self.deadline:
            self.finish(now=self.deadline)

    def finish(self, now: datetime | None = None) -> None:
        """Finish the attempt (a finished one stays as it was). The row is locked first, as
        ``edu.answering.submit`` locks it, and the time read under the lock: no answer is
        stored after ``finished_at``. Sends ``edu.signals.attempt_scored`` when it finished
        the attempt."""
        finished = False
        with transaction.atomic():
            rows = Attempt.objects.select_for_update().filter(pk=self.pk)
            if rows.values_list("finished_at", flat=True).get() is None:
                finished = bool(rows.update(finished_at=now or timezone.now()))
        self.refresh_from_db(fields=["finished_at"])
        if finished:
            signals.attempt_scored.send(sender=Attempt, attempt=self)

    def items(self) -> list[QuizItem]:
        by_id = {
            i.pk: i
            for i in QuizItem.objects.filter(pk__in=self.item_ids)
            .select_related("case__template_version")
            .prefetch_related("questions")
        }
        return [by_id[pk] for pk in self.item_ids if pk in by_id]

    def item_at(self, position: int) -> QuizItem:
        if not 0 <= position < len(self.item_ids):
            raise AttemptError(f"position must be 0 to {len(self.item_ids) - 1}")
        item = (
            QuizItem.objects.select_related("case__template_version")
            .filter(pk=self.item_ids[position])
            .first()
        )
        if item is None:
            raise AttemptError("this item was removed from the quiz")
        return item

    def mark_shown(self, item: QuizItem, now: datetime | None = None) -> None:
        """Remember when the item was first shown: the start of its time on item."""
        key = str(item.pk)
        if key not in self.shown_at:
            self.shown_at[key] = (now or timezone.now()).isoformat()
            Attempt.objects.filter(pk=self.pk).update(shown_at=self.shown_at)

    def reveals(self, item_answered: bool) -> bool:
        """Feedback is shown: right after answering in practice, after finishing in exams and
        reference readings."""
        return self.is_finished or (item_answered and not self.feedback_at_end)

    def may_change_answers(self) -> bool:
        """Exams that allow going back, and reference readings, until they are finished."""
        if self.is_finished:
            return False
        return self.is_reference or (self.is_exam and self.quiz.allow_back)

    def wrong_item_ids(self) -> list[int]:
        """Items with any question answered below full marks or left unanswered."""
        scored = {a.question_id: a.score for a in self.answers.all()}
        wrong = []
        for item in self.items():
            for question in item.questions.all():
                score = scored.get(question.pk, 0.0)
                if score is not None and score < 1.0:
                    wrong.append(item.pk)
                    break
        return wrong

    def score(self) -> dict[str, Any]:
        """Points earned over points available; ungraded free text is left out until graded."""
        earned = possible = 0.0
        pending = 0
        answers = {a.question_id: a for a in self.answers.all()}
        for item in self.items():
            for question in item.questions.all():
                answer = answers.get(question.pk)
                if answer is not None and answer.score is None:
                    pending += 1
                    continue
                possible += question.points
                earned += question.points * (answer.score if answer else 0.0)
        percent = round(100 * earned / possible, 1) if possible else None
        return {"earned": earned, "possible": possible, "percent": percent, "pending": pending}


class Answer(models.Model):
    """The response to one question in one attempt, saved as given, scored on arrival."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    response = models.JSONField()
    score = models.FloatField(null=True, blank=True)
    detail = models.JSONField(default=dict)
    time_on_item_s = models.FloatField(null=True, blank=True)
    answered_at = models.DateTimeField(default=timezone.now)
    graded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("attempt", "question__item__order", "question__order")
        constraints = [
            models.UniqueConstraint(fields=("attempt", "question"), name="one_answer_per_question"),
        ]

    def __str__(self) -> str:
        return f"answer to {self.question} in {self.attempt}"

    def grade(self, score: float, *, by: Any) -> None:
        """An educator's grade (0 to 1) of this answer. A finished attempt's score changes with
        it, which ``edu.signals.attempt_scored`` tells."""
        Answer.objects.filter(pk=self.pk).update(score=score, graded_by=by)
        self.score, self.graded_by = score, by
        if self.attempt.is_finished:
            signals.attempt_scored.send(sender=Attempt, attempt=self.attempt)


def revealed_case_ids(user: Any) -> QuerySet:
    """Ids of the cases ``user`` may now see in full (case page, images, API).

    A case is revealed when an attempt of the trainee, in a published quiz of their cohort,
    has shown its keys: a finished attempt that held its item, or a practice attempt in which
    every question of its item is answered. It stays hidden while any quiz the trainee may
    still answer (open now, or with an unfinished attempt of theirs) holds the case without
    having revealed it there: answering one question, or one quiz, gives nothing away about
    the others. A lazy queryset: the rule is evaluated by the database."""
    if not user.is_authenticated:
        return SyntheticPatient.objects.none().values("pk")
    quizzes = Quiz.objects.filter(is_published=True, cohort__in=user.groups.all())
    attempts = Attempt.objects.filter(user=user, is_reference=False, quiz__in=quizzes)
    revealing = attempts.filter(quiz=OuterRef("quiz")).filter(_reveals_outer_item())
    items = QuizItem.objects.filter(quiz__in=quizzes)
    still_open = (Q(quiz__opens_at__isnull=True) | Q(quiz__opens_at__lte=Now())) & (
        Q(quiz__closes_at__isnull=True) | Q(quiz__closes_at__gt=Now())
    )
    unfinished = attempts.filter(quiz=OuterRef("quiz"), finished_at__isnull=True)
    pending = items.filter(~Exists(revealing)).filter(still_open | Exists(unfinished))
    return items.filter(Exists(revealing)).exclude(case__in=pending.values("case")).values("case")


def _reveals_outer_item() -> Q:
    """Condition on an attempt (in a subquery of a QuizItem query) that it showed the keys of
    that item: finished with the item in it, or in practice with all its questions answered.
    A finished retry counts for an item only if it answered some of it (retries hold some
    items only; counting fewer keeps more hidden, never less)."""
    answered_here = Answer.objects.filter(attempt=OuterRef(OuterRef("pk")), question=OuterRef("pk"))
    unanswered = Question.objects.filter(item=OuterRef(OuterRef("pk"))).filter(
        ~Exists(answered_here)
    )
    touched = Answer.objects.filter(attempt=OuterRef("pk"), question__item=OuterRef(OuterRef("pk")))
    finished = Q(finished_at__isnull=False) & (Q(retry_of__isnull=True) | Exists(touched))
    return finished | (Q(is_exam=False) & ~Exists(unanswered))


# --- spaced practice --------------------------------------------------------------------------


class DifficultyDial(models.Model):
    """How a template's practice cases get harder, level by level (``edu.difficulty``); the
    defaults apply to templates without one."""

    template = models.OneToOneField(
        CaseTemplate, on_delete=models.CASCADE, related_name="difficulty_dial"
    )
    levels = models.PositiveSmallIntegerField(
        default=difficulty.Dial.levels, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    hardest_severity_scale = models.FloatField(
        default=difficulty.Dial.hardest_severity_scale,
        validators=[MinValueValidator(0.05), MaxValueValidator(1.0)],
        help_text="The hardest level's lesions: this fraction of the template's severity.",
    )
    easiest_truncation = models.FloatField(
        default=difficulty.Dial.easiest_truncation,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )
    hardest_truncation = models.FloatField(
        default=difficulty.Dial.hardest_truncation,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )

    def __str__(self) -> str:
        return f"difficulty dial of {self.template}"

    @classmethod
    def for_template(cls, template: CaseTemplate) -> DifficultyDial:
        return cls.objects.filter(template=template).first() or cls(template=template)

    def as_dial(self) -> difficulty.Dial:
        return difficulty.Dial(
            self.levels,
            self.hardest_severity_scale,
            self.easiest_truncation,
            self.hardest_truncation,
        )


class ConceptCard(models.Model):
    """One trainee's memory of one concept, a template's finding at a difficulty level, in
    FSRS's terms (``edu.spacing``); the card is due when the trainee should practise it."""

    trainee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="concept_cards"
    )
    template = models.ForeignKey(CaseTemplate, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    state = models.PositiveSmallIntegerField(
        default=1, help_text="1 learning, 2 review, 3 relearning."
    )
    step = models.PositiveSmallIntegerField(null=True, default=0)
    stability = models.FloatField(null=True)
    difficulty = models.FloatField(null=True)
    due = models.DateTimeField(default=timezone.now, db_index=True)
    last_review = models.DateTimeField(null=True)
    streak = models.PositiveIntegerField(default=0, help_text="Right answers in a row.")
    best_streak = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("due", "pk")
        permissions = [("practise", "Practise concepts on fresh cases, spaced by FSRS")]
        constraints = [
            models.UniqueConstraint(
                fields=("trainee", "template", "level"), name="one_card_per_concept"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trainee} on {self.template} level {self.level}"

    @classmethod
    def open(cls, *, trainee: Any, template: CaseTemplate, level: int = 1) -> ConceptCard:
        """The trainee's card of the concept, made (due now) when they have none; a card
        already there is brought forward to now."""
        card, created = cls.objects.get_or_create(trainee=trainee, template=template, level=level)
        if not created and card.due > timezone.now():
            card.due = timezone.now()
            ConceptCard.objects.filter(pk=card.pk).update(due=card.due)
        return card

    @property
    def memory(self) -> spacing.MemoryState:
        return spacing.MemoryState(
            self.state, self.step, self.stability, self.difficulty, self.due, self.last_review
        )

    def is_due(self, now: datetime | None = None) -> bool:
        return self.due <= (now or timezone.now())

    def retrievability(self, now: datetime | None = None) -> float | None:
        return spacing.retrievability(self.memory, now or timezone.now())


class ReviewLog(models.Model):
    """One practice of a card on one case: drawn (shown), then answered and rated. A trainee
    meets a case once (a constraint holds it), so they learn the finding, not the picture."""

    card = models.ForeignKey(ConceptCard, on_delete=models.CASCADE, related_name="reviews")
    trainee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    case = models.ForeignKey(SyntheticPatient, on_delete=models.PROTECT, related_name="+")
    seed = models.BigIntegerField(help_text="Draws and orders the options shown.")
    options = models.JSONField(
        default=list, blank=True, help_text='The finding options shown: [{"text", "correct"}].'
    )
    shown_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    responses = models.JSONField(default=dict)
    score = models.FloatField(null=True, blank=True)
    detail = models.JSONField(default=dict)
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="FSRS: 1 again, 2 hard, 3 good, 4 easy."
    )
    due_after = models.DateTimeField(null=True, blank=True, help_text="The due date it set.")

    class Meta:
        ordering = ("-shown_at", "-pk")
        constraints = [
            models.UniqueConstraint(fields=("trainee", "case"), name="case_once_per_trainee"),
            models.UniqueConstraint(
                fields=("card",), condition=Q(answered_at__isnull=True), name="one_open_review"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.card} on {self.case.patient_id}"

    @property
    def is_answered(self) -> bool:
        return self.answered_at is not None


class PracticeGeneration(models.Model):
    """A generation job launched for a concept whose pool had no unseen case left; its
    cases serve every trainee practising that concept, reviewed by experts or not yet
    (rejected ones never)."""

    job = models.OneToOneField(GenerationJob, on_delete=models.CASCADE, related_name="practice")
    template = models.ForeignKey(CaseTemplate, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField()

    def __str__(self) -> str:
        return f"{self.job} for {self.template} level {self.level}"


def practised_case_ids(user: Any) -> QuerySet:
    """Ids of the cases ``user`` answered in practice: seen in full, like a revealed quiz
    case. A lazy queryset."""
    if not user.is_authenticated:
        return SyntheticPatient.objects.none().values("pk")
    return ReviewLog.objects.filter(trainee=user, answered_at__isnull=False).values("case")
