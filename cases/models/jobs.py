"""Generation jobs and the chunks several workers share them in."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import QuerySet
from django.utils import timezone

from cases.models.templates import TemplateVersion

GENERATE_TASK = "cases.tasks.generate_chunk"


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
    with_twins = models.BooleanField(
        default=False,
        help_text="Also make each case's normal twin: the same patient without the finding.",
    )
    seed = models.BigIntegerField(default=new_job_seed)
    # The difficulty dial of practice cases: smaller lesions (severity scaled down) and less
    # typical anatomy (truncation) than the template version asks for.
    severity_scale = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.05), MaxValueValidator(1.0)],
        help_text="Multiplies the version's severities: 1 makes them as the template says.",
    )
    truncation = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Replaces the version's truncation when set.",
    )
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
            done=models.functions.Greatest(models.F("done"), self.cases.cases().count())
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
            done=self.cases.cases().count(),
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
