"""Synthetic cases: a patient with one Study per timepoint, each holding an image Series
(one Instance) and, where the generator drew a lesion mask, a SEG Series. Every Instance
keeps the seed and latent vectors that reproduce it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models
from django.db.models import QuerySet
from django.urls import reverse

from cases.models.hiding import hidden_cases_condition, hidden_from
from cases.models.jobs import GenerationJob
from cases.models.templates import TemplateVersion

# Who, beyond those who see every case, sees which cases: rules other apps register.
CaseAccess = Callable[[Any], QuerySet]
_case_access: list[CaseAccess] = []


def register_case_access(granted_to: CaseAccess) -> None:
    """Let a user who may not see every case see some: ``granted_to(user)`` returns a lazy
    queryset of the ids (``values("pk")``-shaped) of cases that user may see, of which the
    approved ones are shown. Call it from an AppConfig.ready(); with no rule registered, such
    a user sees no case. A core app offers this so that it never imports a feature app."""
    if granted_to not in _case_access:
        _case_access.append(granted_to)


class PatientQuerySet(QuerySet):
    def cases(self) -> PatientQuerySet:
        """The cases alone, without normal twins: what listings, curation, quiz pickers and
        studies offer. A twin is reached only through its case (``case.normal_twin``)."""
        return self.filter(twin_of__isnull=True)

    def not_hidden_from(self, user: Any) -> PatientQuerySet:
        """These cases but those a registered filter hides from ``user`` (cases.models.hiding):
        a quiz, review or export page shows none of them, whatever the user's role."""
        hidden = hidden_cases_condition(hidden_from(user))
        return self if hidden is None else self.exclude(hidden)

    def visible_to(self, user: Any) -> PatientQuerySet:
        visible = self.not_hidden_from(user)
        if user.has_perm("cases.view_syntheticpatient"):
            return visible
        if not _case_access:
            return self.none()
        granted = models.Q()
        for granted_to in _case_access:
            granted |= models.Q(pk__in=granted_to(user))
        return visible.filter(granted, status=SyntheticPatient.Status.APPROVED)


class SyntheticPatient(models.Model):
    """One synthetic case: a patient drawn from the recipe and their progression series."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        IN_REVIEW = "in_review"
        APPROVED = "approved"
        REJECTED = "rejected"

    job = models.ForeignKey(GenerationJob, on_delete=models.PROTECT, related_name="cases")
    case_index = models.PositiveIntegerField()
    template_version = models.ForeignKey(
        TemplateVersion, on_delete=models.PROTECT, related_name="cases"
    )
    patient_id = models.CharField(max_length=64, unique=True)
    patient_name = models.CharField(max_length=64)
    sex = models.CharField(max_length=1, choices=(("F", "female"), ("M", "male")))
    birth_date = models.DateField()
    age_at_first_study = models.PositiveIntegerField()
    comorbidities = models.JSONField(default=list)
    history = models.TextField()
    seed = models.BigIntegerField(help_text="Seed of this case's identity latent z.")
    latent_z = models.JSONField(help_text="The identity latent z (list of floats).")
    generation_attempts = models.PositiveIntegerField(
        default=1, help_text="Lesion plans the generator tried before one passed its check."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    twin_of = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="normal_twin",
        help_text="The case this is the normal twin of: the same patient (model, seed, z) "
        "generated without the finding, severity 0 at every timepoint.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "case_index")
        constraints = [
            models.UniqueConstraint(
                fields=("job", "case_index"),
                condition=models.Q(twin_of__isnull=True),
                name="one_case_per_job_index",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} ({self.template_version.title})"

    def get_absolute_url(self) -> str:
        return reverse("case-detail", args=[self.pk])

    @property
    def finding(self) -> str:
        return self.template_version.finding

    @property
    def is_twin(self) -> bool:
        return self.twin_of_id is not None


class Study(models.Model):
    patient = models.ForeignKey(SyntheticPatient, on_delete=models.CASCADE, related_name="studies")
    study_uid = models.CharField(max_length=64, unique=True)
    study_date = models.DateField()
    timepoint = models.PositiveIntegerField()
    severity = models.FloatField()
    accession_number = models.CharField(max_length=16)
    description = models.CharField(max_length=64)

    class Meta:
        ordering = ("patient", "timepoint")
        verbose_name_plural = "studies"
        constraints = [
            models.UniqueConstraint(
                fields=("patient", "timepoint"), name="one_study_per_timepoint"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient.patient_id} t{self.timepoint}"


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_uid = models.CharField(max_length=64, unique=True)
    modality = models.CharField(max_length=16)
    series_number = models.PositiveIntegerField()
    description = models.CharField(max_length=64)

    class Meta:
        ordering = ("study", "series_number")
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return f"{self.modality} series {self.series_number} of {self.study}"


class Instance(models.Model):
    """One DICOM object in storage, with what reproduces it."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64)
    instance_number = models.PositiveIntegerField()
    file = models.FileField(max_length=300)
    size = models.PositiveIntegerField()
    seed = models.BigIntegerField()
    truncation = models.FloatField()
    severity = models.FloatField()
    latent_w = models.JSONField(help_text="The w vector the synthesis network received.")

    class Meta:
        ordering = ("series", "instance_number")

    def __str__(self) -> str:
        return self.sop_instance_uid

    @property
    def wado_uri(self) -> str:
        series = self.series
        return (
            f"{reverse('wado-uri')}?requestType=WADO&studyUID={series.study.study_uid}"
            f"&seriesUID={series.series_uid}&objectUID={self.sop_instance_uid}"
            "&contentType=application%2Fdicom"
        )


class LesionGroundTruth(models.Model):
    """The lesion mask of one image: as a DICOM SEG instance and as summary numbers."""

    image = models.OneToOneField(Instance, on_delete=models.CASCADE, related_name="lesion")
    segmentation = models.OneToOneField(
        Instance, on_delete=models.CASCADE, related_name="segmented_lesion"
    )
    area_pixels = models.PositiveIntegerField()
    centroid_row = models.FloatField(null=True)
    centroid_col = models.FloatField(null=True)
    # Measured on the mask with the image's pixel spacing (null for generators that do not
    # say); side is the patient's, location a lobe or lung zone.
    area_mm2 = models.FloatField(null=True)
    longest_diameter_mm = models.FloatField(null=True)
    side = models.CharField(max_length=8, blank=True)
    location = models.CharField(max_length=32, blank=True)
    segmented_dice = models.FloatField(
        null=True, help_text="Agreement of the mask with the generator's check segmentation."
    )

    def __str__(self) -> str:
        return f"lesion of {self.image}"


def instances_visible_to(user: Any) -> QuerySet[Instance]:

    if user.has_perm("cases.view_syntheticpatient"):  # no "patient in (every patient)" in SQL
        hidden = hidden_cases_condition(hidden_from(user), prefix="series__study__")
        return Instance.objects.all() if hidden is None else Instance.objects.exclude(hidden)
    patients = SyntheticPatient.objects.visible_to(user)
    return Instance.objects.filter(series__study__patient__in=patients)
