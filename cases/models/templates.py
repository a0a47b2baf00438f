"""Case templates and their immutable versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.urls import reverse

from cases.models.generators import GeneratorModel

if TYPE_CHECKING:
    from cases.models.jobs import GenerationJob


class CaseTemplate(models.Model):
    """The stable identity of a template; its content lives in immutable versions."""

    title = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, help_text="The owner."
    )
    co_authors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="co_authored_templates",
        help_text="Educators who may edit the template besides its owner.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("title",)

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("template-detail", args=[self.pk])

    def is_author(self, user: Any) -> bool:
        """The owner or a co-author."""
        return user.pk is not None and (
            self.created_by_id == user.pk or self.co_authors.filter(pk=user.pk).exists()
        )

    @property
    def current(self) -> TemplateVersion:
        return self.versions.order_by("-number").first()

    def add_version(self, *, author: Any, **content: Any) -> TemplateVersion:
        """Save edited content as the next version; earlier versions stay as they were."""
        with transaction.atomic():
            locked = CaseTemplate.objects.select_for_update().get(pk=self.pk)
            number = (locked.versions.aggregate(n=models.Max("number"))["n"] or 0) + 1
            version = TemplateVersion(template=locked, number=number, created_by=author, **content)
            version.full_clean()
            version.save()
            if locked.title != version.title:
                CaseTemplate.objects.filter(pk=locked.pk).update(title=version.title)
        return version


PROGRESSION_METHODS = (("condition", "Severity condition"), ("direction", "Latent direction"))


PLACEMENT_KEYS = ("side", "location")  # optional: where the lesion goes ("" = anywhere)


def validate_progression(value: Any) -> None:
    """A progression recipe: timepoints, severity from/to in [0, 1], interval, method; and,
    for generators that place the lesion, its side and location (checked in
    ``TemplateVersion.clean`` against the generator)."""
    required = {"timepoints", "severity_from", "severity_to", "interval_days", "method"}
    if (
        not isinstance(value, dict)
        or required - set(value)
        or set(value) - required - set(PLACEMENT_KEYS)
    ):
        raise ValidationError(
            f"progression must have the keys {sorted(required)} and may have {list(PLACEMENT_KEYS)}"
        )
    for key in PLACEMENT_KEYS:
        if not isinstance(value.get(key, ""), str):
            raise ValidationError(f"{key} must be text")
    if not isinstance(value["timepoints"], int) or not 1 <= value["timepoints"] <= 20:
        raise ValidationError("timepoints must be a whole number from 1 to 20")
    for key in ("severity_from", "severity_to"):
        if not isinstance(value[key], int | float) or not 0.0 <= value[key] <= 1.0:
            raise ValidationError(f"{key} must be a number in [0, 1]")
    if not isinstance(value["interval_days"], int) or not 1 <= value["interval_days"] <= 3650:
        raise ValidationError("interval_days must be a whole number from 1 to 3650")
    if value["method"] not in dict(PROGRESSION_METHODS):
        raise ValidationError(f"method must be one of {list(dict(PROGRESSION_METHODS))}")


class TemplateVersion(models.Model):
    """One immutable version of a case template; a generated case points at exactly one."""

    template = models.ForeignKey(CaseTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    modality = models.CharField(max_length=16)
    body_region = models.CharField(max_length=64)
    finding = models.CharField(max_length=64)
    generator = models.ForeignKey(GeneratorModel, on_delete=models.PROTECT)
    truncation = models.FloatField(default=0.8)
    progression = models.JSONField(validators=[validate_progression])
    patient_recipe = models.JSONField()
    history = models.TextField(
        help_text="Clinical vignette; {age}, {sex_word}, "
        "{comorbidities} and {finding} are filled per patient."
    )
    findings_text = models.TextField(blank=True)
    diagnosis = models.CharField(max_length=200)
    discussion = models.TextField(blank=True)
    teaching_points = models.TextField(blank=True)
    question_stems = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("template", "-number")
        constraints = [
            models.UniqueConstraint(fields=("template", "number"), name="unique_template_version"),
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValidationError("template versions are immutable; add a new version instead")
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.generator_id is None:
            return
        if self.finding not in self.generator.findings:
            raise ValidationError(
                {"finding": f"the generator makes only {' or '.join(self.generator.findings)}"}
            )
        if self.modality != self.generator.modality:
            raise ValidationError(
                {"modality": f"the generator makes {self.generator.modality} images"}
            )
        if not 0.0 <= self.truncation <= 1.0:
            raise ValidationError({"truncation": "truncation must lie in [0, 1]"})
        if self.generator.architecture == "torchscript" and (self.progression or {}).get(
            "method"
        ) == ("direction"):
            raise ValidationError(
                {"progression": "a TorchScript generator moves severity through its condition"}
            )
        self._check_placement()
        from genworker.patients import PatientRecipe  # pure Python, no torch

        try:
            PatientRecipe.from_dict(
                {**self.patient_recipe, **self._recipe_from_progression(), "vignette": self.history}
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ValidationError({"patient_recipe": str(exc)}) from exc

    def _check_placement(self) -> None:
        """Side and location must be ones the generator can place this finding at."""
        options = self.generator.placement(self.finding)
        for key, allowed in (("side", options["sides"]), ("location", options["locations"])):
            chosen = (self.progression or {}).get(key, "")
            if chosen and chosen not in allowed:
                where = f"one of {allowed}" if allowed else "left empty: it places no lesion"
                raise ValidationError(
                    {"progression": f"{key} {chosen!r} must be {where} for {self.finding}"}
                )

    @property
    def side(self) -> str:
        return (self.progression or {}).get("side", "")

    @property
    def location(self) -> str:
        return (self.progression or {}).get("location", "")

    def _recipe_from_progression(self) -> dict[str, Any]:
        p = self.progression or {}
        return {
            key: p[key]
            for key in ("timepoints", "severity_from", "severity_to", "interval_days")
            if key in p
        }

    def patient_recipe_dict(self) -> dict[str, Any]:
        """The full genworker PatientRecipe for this version."""
        return {**self.patient_recipe, **self._recipe_from_progression(), "vignette": self.history}

    def launch_job(
        self,
        *,
        requested_by: Any,
        n_cases: int,
        seed: int | None = None,
        severity_scale: float = 1.0,
        truncation: float | None = None,
        with_twins: bool = False,
    ) -> GenerationJob:
        """Create a job and queue its task on the gpu queue once the row is committed.

        ``severity_scale`` and ``truncation`` turn the difficulty dial (smaller lesions, less
        typical anatomy) for this job only; the version stays as it is. With ``with_twins``
        every case gets its normal twin (see ``SyntheticPatient.twin_of``)."""
        from cases.models.jobs import GenerationJob

        problem = self.generator.why_it_cannot_make(self.finding)
        if problem:
            raise ValidationError(problem)
        if not 1 <= n_cases <= GenerationJob.MAX_CASES:
            raise ValidationError(f"a job makes 1 to {GenerationJob.MAX_CASES} cases")
        job = GenerationJob(
            template_version=self,
            requested_by=requested_by,
            n_cases=n_cases,
            severity_scale=severity_scale,
            truncation=truncation,
            with_twins=with_twins,
        )
        if seed is not None:
            job.seed = seed
        job.full_clean(exclude=("template_version", "requested_by", "uid"))
        job.save()
        transaction.on_commit(job.enqueue)
        return job
