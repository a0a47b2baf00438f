"""Background operations: heavy work a page asks for, run by a task on the ``cpu`` queue.

Importing files into a pool, building a Turing study, sending a case to a PACS and applying a
curation rule to every case of a template take seconds to minutes, too long for a web request
and more memory than a web process should hold. The page records an ``Operation`` (which task,
with which plain values) and answers at once with a link to its status page, which shows the
progress as the task reports it and, once finished, what it made or why it failed.

A task claims its row under a row lock, so a repeated delivery of a finished operation does
nothing; whatever it makes is committed together with the row's success (``succeed``), so an
operation is either finished with its result or failed with its reason and nothing of it kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

CPU_QUEUE = "cpu"
PROGRESS_EVERY_S = 0.5  # each progress record is a commit of its own

logger = logging.getLogger(__name__)


class AlreadyFinished(Exception):
    """Another delivery of the task finished the operation first: roll back what this one made."""


class Operation(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    task = models.CharField(max_length=100, help_text="The Celery task that runs it, by name.")
    title = models.CharField(max_length=200)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operations"
    )
    params = models.JSONField(default=dict, help_text="The task's plain values (primary keys).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    result = models.JSONField(
        default=dict,
        blank=True,
        help_text="What it made: a summary, rows (item, outcome, kind) and a link.",
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("operation", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @classmethod
    def launch(
        cls, *, task: str, title: str, user: Any, params: dict[str, Any], total: int = 0
    ) -> Operation:
        """Record the operation and send its task once the record is committed."""
        operation = cls.objects.create(
            task=task, title=title[:200], requested_by=user, params=params, total=total
        )
        transaction.on_commit(operation.enqueue)
        return operation

    def enqueue(self) -> None:
        """Send the task by name: the web process imports no task module."""
        from gantry.celery import app

        app.send_task(self.task, kwargs={"operation_pk": self.pk}, queue=CPU_QUEUE)

    @classmethod
    def claim(cls, pk: int) -> Operation | None:
        """Mark the operation running under its row lock; None when it is already finished
        (a repeated delivery) or gone."""
        with transaction.atomic():
            operation = cls.objects.select_for_update().filter(pk=pk).first()
            if operation is None or operation.is_finished:
                return None
            cls.objects.filter(pk=pk).update(
                status=cls.Status.RUNNING,
                attempts=models.F("attempts") + 1,
                started_at=Coalesce(models.F("started_at"), timezone.now()),
            )
        operation.refresh_from_db()
        return operation

    def record_progress(self, done: int, total: int | None = None) -> None:
        """Record ``done`` of ``total`` steps, at most every PROGRESS_EVERY_S and at the end."""
        total = self.total if total is None else total
        now = time.monotonic()
        if done < total and now - getattr(self, "_recorded_at", 0.0) < PROGRESS_EVERY_S:
            return
        self._recorded_at = now
        self.done, self.total = done, total
        Operation.objects.filter(pk=self.pk, status=self.Status.RUNNING).update(
            done=done, total=total
        )

    def succeed(self, result: dict[str, Any]) -> bool:
        """Finish the running operation with ``result``; False when another delivery finished
        it first. Call it inside the transaction that commits what the operation made."""
        updated = Operation.objects.filter(pk=self.pk, status=self.Status.RUNNING).update(
            status=self.Status.SUCCEEDED,
            result=result,
            done=models.F("total"),
            finished_at=timezone.now(),
        )
        if updated:
            self.refresh_from_db()
        return updated == 1

    def fail(self, error: str) -> None:
        """Mark the unfinished operation failed with its reason."""
        Operation.objects.filter(
            pk=self.pk, status__in=(self.Status.QUEUED, self.Status.RUNNING)
        ).update(status=self.Status.FAILED, error=error[:4000], finished_at=timezone.now())
        self.refresh_from_db()

    @classmethod
    def run(cls, pk: int, work: Callable[[Operation], dict[str, Any]]) -> Operation | None:
        """Claim the operation, do ``work`` (which returns the result, or raises with the
        reason) and finish it. ``work`` undoes what it made before it raises."""
        operation = cls.claim(pk)
        if operation is None:
            return None
        try:
            result = work(operation)
        except AlreadyFinished:
            return operation
        except ValidationError as exc:
            operation.fail("; ".join(exc.messages))
        except Exception as exc:  # the reason goes to the page; the traceback to the log
            logger.exception("operation %s failed", pk)
            operation.fail(f"{type(exc).__name__}: {exc}")
        else:
            operation.succeed(result)
        return operation

    def progress_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "title": self.title,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "result": self.result,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }
