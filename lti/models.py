"""What Gantry keeps about learning platforms beyond django-lti's registrations: the cohort a
platform's courses map to, and the score owed to the platform for each launched attempt."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from lti_tool.models import LtiRegistration

from edu.models import Attempt


class Platform(models.Model):
    """Gantry's side of a platform registration: its learners join ``cohort``, and its
    instructors pick among that cohort's published quizzes when they deep-link."""

    registration = models.OneToOneField(
        LtiRegistration, on_delete=models.CASCADE, related_name="gantry_platform"
    )
    cohort = models.ForeignKey(
        Group,
        on_delete=models.PROTECT,
        help_text="Learners launched from this platform join this cohort; instructors pick "
        "among its published quizzes.",
    )

    def __str__(self) -> str:
        return f"{self.registration} → {self.cohort}"


class ScoreReport(models.Model):
    """The score of one attempt started from a platform, owed to the platform's gradebook
    through Assignment and Grade Services (AGS). Sent when the attempt is finished, and again
    when a hand grade changes its score."""

    class Status(models.TextChoices):
        PENDING = "pending", "waiting for the attempt to finish"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"

    attempt = models.OneToOneField(Attempt, on_delete=models.CASCADE, related_name="lti_score")
    registration = models.ForeignKey(LtiRegistration, on_delete=models.CASCADE)
    lineitem_url = models.URLField(max_length=1000)
    scopes = models.JSONField(help_text="The AGS scopes the launch granted.")
    user_sub = models.CharField(max_length=255, help_text="The learner's id on the platform.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    sent_score = models.JSONField(null=True, blank=True, help_text="The last score sent.")
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"score of {self.attempt} for {self.registration}"

    def record(self, *, score: dict[str, Any] | None = None, error: str = "") -> None:
        fields: dict[str, Any] = {"error": error[:4000]}
        if error:
            fields["status"] = self.Status.FAILED
        else:
            fields.update(status=self.Status.SENT, sent_score=score, sent_at=timezone.now())
        ScoreReport.objects.filter(pk=self.pk).update(**fields)
        self.refresh_from_db()
