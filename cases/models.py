"""Generators, versioned case templates, generation jobs, and the synthetic cases they make.

A synthetic case is a SyntheticPatient with one Study per timepoint; each Study holds an
image Series (one Instance) and, where the generator drew a lesion mask, a SEG Series.
Every Instance keeps the seed and latent vectors that reproduce it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import models, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone


class GeneratorModel(models.Model):
    """A trained generator checkpoint and its model card (read from the sidecar JSON)."""

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    checkpoint = models.FileField(upload_to="generators/")
    sha256 = models.CharField(max_length=64, unique=True)
    architecture = models.CharField(max_length=40)
    modality = models.CharField(max_length=16)
    resolution = models.PositiveIntegerField()
    conditions_schema = models.JSONField()
    model_card = models.JSONField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("generator-detail", args=[self.pk])

    @property
    def findings(self) -> list[str]:
        return list(self.conditions_schema.get("findings", []))

    @classmethod
    def register(cls, checkpoint_path: Path, *, name: str, title: str) -> GeneratorModel:
        """Store a checkpoint and record its model card; idempotent on the checkpoint's sha256.

        Reads only the sidecar ``<name>.card.json`` written beside the checkpoint, so the web
        process never needs torch.
        """
        card_path = checkpoint_path.with_suffix(".card.json")
        card = json.loads(card_path.read_text())
        existing = cls.objects.filter(sha256=card["sha256"]).first()
        if existing is not None:
            return existing
        model = cls(
            name=name,
            title=title,
            sha256=card["sha256"],
            architecture=card["architecture"],
            modality=card["modality"],
            resolution=card["resolution"],
            conditions_schema=card["conditions"],
            model_card=card,
        )
        with checkpoint_path.open("rb") as fh:
            model.checkpoint.save(
                f"{card['sha256'][:16]}-{checkpoint_path.name}", File(fh), save=False
            )
        model.save()
        return model


class CaseTemplate(models.Model):
    """The stable identity of a template; its content lives in immutable versions."""

    title = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("title",)

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("template-detail", args=[self.pk])

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


def validate_progression(value: Any) -> None:
    """A progression recipe: timepoints, severity from/to in [0, 1], interval, method."""
    required = {"timepoints", "severity_from", "severity_to", "interval_days", "method"}
    if not isinstance(value, dict) or set(value) - required or required - set(value):
        raise ValidationError(f"progression must have exactly the keys {sorted(required)}")
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
                {"finding": f"the generator knows only {self.generator.findings}"}
            )
        if self.modality != self.generator.modality:
            raise ValidationError(
                {"modality": f"the generator makes {self.generator.modality} images"}
            )
        if not 0.0 <= self.truncation <= 1.0:
            raise ValidationError({"truncation": "truncation must lie in [0, 1]"})
        from genworker.patients import PatientRecipe  # pure Python, no torch

        try:
            PatientRecipe.from_dict(
                {**self.patient_recipe, **self._recipe_from_progression(), "vignette": self.history}
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ValidationError({"patient_recipe": str(exc)}) from exc

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
        self, *, requested_by: Any, n_cases: int, seed: int | None = None
    ) -> GenerationJob:
        """Create a job and queue its task on the gpu queue once the row is committed."""
        if not 1 <= n_cases <= GenerationJob.MAX_CASES:
            raise ValidationError(f"a job makes 1 to {GenerationJob.MAX_CASES} cases")
        job = GenerationJob(template_version=self, requested_by=requested_by, n_cases=n_cases)
        if seed is not None:
            job.seed = seed
        job.save()
        transaction.on_commit(job.enqueue)
        return job


GENERATE_TASK = "genworker.tasks.generate_chunk"


class JobQuerySet(QuerySet):
    def active(self) -> JobQuerySet:
        return self.filter(status__in=(GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING))


def new_job_seed() -> int:
    return secrets.randbelow(2**31)


class GenerationJob(models.Model):
    """A request to generate N cases from one template version.

    The job is split into chunks of consecutive cases, one gpu-queue task each, so several
    GPU workers share a big job; progress is the number of committed cases, so it is exact
    however the chunks interleave.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    template_version = models.ForeignKey(
        TemplateVersion, on_delete=models.PROTECT, related_name="jobs"
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    n_cases = models.PositiveIntegerField()
    seed = models.BigIntegerField(default=new_job_seed)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    timings = models.JSONField(
        default=dict, blank=True, help_text="Seconds spent per stage (generator, dicom, storage)."
    )

    objects = JobQuerySet.as_manager()

    MAX_CASES = 1000

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"job {self.pk} ({self.n_cases} x {self.template_version})"

    @property
    def total(self) -> int:
        return self.n_cases

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    def progress_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }

    def plan_chunks(self) -> list[GenerationChunk]:
        """The job's chunks of at most GANTRY_CHUNK_CASES cases; created once, then reused."""
        size = settings.GANTRY_CHUNK_CASES
        GenerationChunk.objects.bulk_create(
            [
                GenerationChunk(
                    job=self, index=i, first_case=first, n_cases=min(size, self.n_cases - first)
                )
                for i, first in enumerate(range(0, self.n_cases, size))
            ],
            ignore_conflicts=True,
        )
        return list(self.chunks.order_by("index"))

    def enqueue(self) -> None:
        """Send one task per unfinished chunk, by name: the web process never imports the
        engine. Sending again is harmless: a chunk runs once and a case is committed once."""
        from gantry.celery import GPU_QUEUE, app

        for chunk in self.plan_chunks():
            if chunk.status != GenerationChunk.Status.DONE:
                app.send_task(
                    GENERATE_TASK,
                    kwargs={"job_pk": self.pk, "chunk_index": chunk.index},
                    queue=GPU_QUEUE,
                )

    def mark_running(self, *, worker: str, device: str) -> bool:
        """Claim the job; False when it is already finished (a repeated delivery)."""
        claimed = GenerationJob.objects.filter(
            pk=self.pk, status__in=(self.Status.QUEUED, self.Status.RUNNING)
        ).update(
            status=self.Status.RUNNING,
            worker=worker,
            device=device,
            started_at=models.functions.Coalesce(models.F("started_at"), timezone.now()),
        )
        self.refresh_from_db()
        return claimed == 1

    def record_progress(self) -> None:
        """Set ``done`` to the committed cases, never lower: two workers that count at
        once may write in the other order, and progress must not go back."""
        GenerationJob.objects.filter(pk=self.pk).update(
            done=models.functions.Greatest(models.F("done"), self.cases.count())
        )
        self.refresh_from_db(fields=["done"])

    def finish(self, *, error: str = "") -> None:
        """Mark a queued or running job failed with ``error``, or succeeded; its timings are
        its chunks' sum. A finished job stays as it is."""
        status = self.Status.FAILED if error else self.Status.SUCCEEDED
        timings: dict[str, float] = {}
        for chunk_timings in self.chunks.values_list("timings", flat=True):
            for stage, seconds in chunk_timings.items():
                timings[stage] = round(timings.get(stage, 0.0) + seconds, 6)
        GenerationJob.objects.filter(pk=self.pk).filter(
            status__in=(self.Status.QUEUED, self.Status.RUNNING)
        ).update(
            status=status,
            error=error[:4000],
            finished_at=timezone.now(),
            timings=timings,
            done=self.cases.count(),
        )
        self.refresh_from_db()

    def finish_if_complete(self) -> bool:
        """Mark the job succeeded once every chunk is done; True when it is (or was)."""
        if self.chunks.exclude(status=GenerationChunk.Status.DONE).exists():
            return False
        self.finish()  # a no-op for a job already finished
        return True


class GenerationChunk(models.Model):
    """Consecutive cases of one job, run by one gpu-queue task under a renewable lease.

    A worker claims a queued chunk, or one whose lease ran out because its worker died,
    and renews the lease after each generator batch. A task that finds a chunk leased by a live
    worker asks again later instead of dropping its message, so a chunk is never lost;
    cases are committed once each whoever runs them.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    first_case = models.PositiveIntegerField()
    n_cases = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("job", "index")
        constraints = [
            models.UniqueConstraint(fields=("job", "index"), name="one_chunk_per_job_index"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.job}"

    @property
    def case_indexes(self) -> range:
        return range(self.first_case, self.first_case + self.n_cases)

    def _lease_until(self) -> Any:
        return timezone.now() + timedelta(seconds=settings.GANTRY_CHUNK_LEASE_S)

    def claim(self, *, worker: str) -> bool:
        """Take the chunk if it is queued or its lease ran out; False if someone holds it."""
        now = timezone.now()
        claimed = (
            GenerationChunk.objects.filter(pk=self.pk)
            .filter(
                models.Q(status=self.Status.QUEUED)
                | models.Q(status=self.Status.RUNNING, lease_expires_at__lt=now)
            )
            .update(
                status=self.Status.RUNNING,
                worker=worker,
                attempts=models.F("attempts") + 1,
                lease_expires_at=self._lease_until(),
            )
        )
        self.refresh_from_db()
        return claimed == 1

    def renew(self) -> bool:
        """Extend this worker's lease; False when the chunk is no longer this worker's."""
        return bool(
            GenerationChunk.objects.filter(
                pk=self.pk, status=self.Status.RUNNING, worker=self.worker
            ).update(lease_expires_at=self._lease_until())
        )

    def seconds_until_lease_ends(self) -> float:
        if self.lease_expires_at is None:
            return 0.0
        return max(0.0, (self.lease_expires_at - timezone.now()).total_seconds())

    def end(self, *, status: str, timings: dict[str, float]) -> None:
        GenerationChunk.objects.filter(pk=self.pk).update(
            status=status, finished_at=timezone.now(), timings=timings
        )
        self.refresh_from_db()


class PatientQuerySet(QuerySet):
    def visible_to(self, user: Any) -> PatientQuerySet:
        from cases.roles import can_see_all_cases

        if can_see_all_cases(user):
            return self
        # Trainees meet a case only through a published quiz of their cohort, and see it in
        # full (case page, images, API) once its answer was revealed to them: otherwise the
        # case page would give away a quiz's diagnosis.
        from edu.models import revealed_case_ids

        return self.filter(status=SyntheticPatient.Status.APPROVED, pk__in=revealed_case_ids(user))


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
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "case_index")
        constraints = [
            models.UniqueConstraint(fields=("job", "case_index"), name="one_case_per_job_index"),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} ({self.template_version.title})"

    def get_absolute_url(self) -> str:
        return reverse("case-detail", args=[self.pk])

    @property
    def finding(self) -> str:
        return self.template_version.finding


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

    def __str__(self) -> str:
        return f"lesion of {self.image}"


def instances_visible_to(user: Any) -> QuerySet[Instance]:
    from cases.roles import can_see_all_cases

    if can_see_all_cases(user):  # no "patient in (every patient)" condition for the SQL
        return Instance.objects.all()
    patients = SyntheticPatient.objects.visible_to(user)
    return Instance.objects.filter(series__study__patient__in=patients)


class ReferencePool(models.Model):
    """A named set of real (not synthetic) images: the "real" side of Turing studies."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

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


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class AccessToken(models.Model):
    """A user's token for DICOMweb clients, kept as its SHA-256 only.

    The key is shown once, when it is made: a copy of the database holds no key that works.
    A key has 160 random bits, so an unsalted, fast hash is enough (nothing to guess)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_token"
    )
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)  # the key's first characters, to tell keys apart
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(cls, user: Any) -> str:
        """A new key for ``user``, which revokes the old one; returned, not stored."""
        key = secrets.token_hex(20)
        with transaction.atomic():
            cls.objects.filter(user=user).delete()
            cls.objects.create(user=user, digest=token_digest(key), prefix=key[:6])
        return key

    @classmethod
    def user_for(cls, key: str) -> Any | None:
        """The user a key belongs to; None for an unknown key."""
        found = cls.objects.select_related("user").filter(digest=token_digest(key)).first()
        return found.user if found else None
