"""Reference pools: real (not synthetic) images, stored de-identified."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from cases.models.hiding import hidden_from, hidden_pools_condition


class PoolQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> PoolQuerySet:
        """The pools ``user`` may see: every pool for those with the reference permission,
        but what a registered filter hides (cases.models.hiding)."""
        if not user.has_perm("cases.view_referencepool"):
            return self.none()
        hidden = hidden_pools_condition(hidden_from(user))
        return self if hidden is None else self.exclude(hidden)


class ReferencePool(models.Model):
    """A named set of real (not synthetic) images: the "real" side of Turing studies.

    A pool that ``holds_synthetic`` keeps teaching files instead (synthetic cases exported
    and imported back with their key): it takes synthetic images, and never serves as the
    real side of a Turing study."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    holds_synthetic = models.BooleanField(
        default=False,
        verbose_name="holds synthetic teaching files",
        help_text="For teaching files of synthetic cases; such a pool is never the real side "
        "of a Turing study.",
    )
    modality = models.CharField(
        max_length=16,
        blank=True,
        help_text="The modality every image must have (e.g. MR, DX); empty for any.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PoolQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class ReferenceImage(models.Model):
    """One real DICOM instance in a pool, stored de-identified.

    ``source_uid_digest`` is the sha256 of the SOP Instance UID the file arrived with: it
    detects a second import of the same image without keeping the original identifier.
    ``deidentification`` records what was changed on import (attribute -> action).
    """

    class Origin(models.TextChoices):
        IMPORT = "import", "imported DICOM"
        COHORT = "cohort", "held-out cohort image"
        TEACHING_FILE = "teaching_file", "teaching file (with its key)"

    pool = models.ForeignKey(ReferencePool, on_delete=models.CASCADE, related_name="images")
    origin = models.CharField(max_length=16, choices=Origin.choices)
    source_name = models.CharField(max_length=300, help_text="File name as uploaded.")
    source_uid_digest = models.CharField(max_length=64)
    study_uid = models.CharField(max_length=64, db_index=True)
    series_uid = models.CharField(max_length=64, db_index=True)
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64)
    transfer_syntax_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    frames = models.PositiveIntegerField(default=1)
    # Pseudonymised header values kept for DICOMweb searches (QIDO-RS).
    patient_id = models.CharField(max_length=64, blank=True)
    study_date = models.DateField(null=True, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    file = models.FileField(max_length=300)
    size = models.PositiveBigIntegerField(default=0)
    finding = models.CharField(max_length=64, blank=True)
    severity = models.FloatField(null=True, blank=True)
    teaching_key = models.JSONField(
        default=dict,
        blank=True,
        help_text="A teaching file's key for this image: diagnosis, timepoint, lesion "
        "measurements.",
    )
    deidentification = models.JSONField(default=dict)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("pool", "imported_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("pool", "source_uid_digest"), name="unique_reference_source_per_pool"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pool}: {self.source_name}"
