"""Scores back to the platform's gradebook through LTI Assignment and Grade Services.

When an attempt launched from a platform is finished (or a hand grade changes its score),
a ``cpu``-queue task posts the score to the line item the launch named: the points earned
and available, Completed, and FullyGraded or PendingManual while free text awaits a grade.
The platform keeps the latest score per learner and line item, so sending again is harmless.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from django.db import transaction
from django.utils import timezone
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.service_connector import ServiceConnector

from edu.models import Attempt
from lti.models import ScoreReport

SEND_TASK = "lti.tasks.send_score"
TIMEOUT_S = 10


class TimeoutSession(requests.Session):
    """A requests session whose calls give up after TIMEOUT_S: a platform that does not
    answer must not hold a worker (or a launch) for ever."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT_S)
        return super().request(*args, **kwargs)


def queue_score(sender: Any, attempt: Attempt, **_kwargs: Any) -> None:
    """``edu.signals.attempt_scored`` receiver: send the score once the change is committed,
    for attempts launched from a platform that grants scores."""
    report = ScoreReport.objects.filter(attempt=attempt).only("pk").first()
    if report is None:
        return
    from gantry.celery import app

    transaction.on_commit(
        lambda: app.send_task(SEND_TASK, kwargs={"score_report_pk": report.pk}, queue="cpu")
    )


def grade_of(report: ScoreReport) -> Grade:
    score = report.attempt.score()
    progress = "PendingManual" if score["pending"] else "FullyGraded"
    return (
        Grade()
        .set_score_given(score["earned"])
        .set_score_maximum(score["possible"])
        .set_activity_progress("Completed")
        .set_grading_progress(progress)
        .set_timestamp(timezone.now().isoformat())
        .set_user_id(report.user_sub)
    )


def send_score(score_report_pk: int) -> ScoreReport:
    """Post the attempt's current score to the platform; the report records what was sent or
    why it failed."""
    report = ScoreReport.objects.select_related("attempt__quiz", "registration").get(
        pk=score_report_pk
    )
    if not report.attempt.is_finished:
        return report
    grade = grade_of(report)
    if not grade.get_score_maximum():
        report.record(error="the attempt has no scored question yet: nothing to send")
        return report
    connector = ServiceConnector(report.registration.to_registration(), TimeoutSession())
    service = AssignmentsGradesService(
        connector, {"scope": report.scopes, "lineitem": report.lineitem_url}
    )
    try:
        service.put_grade(grade)
    except LtiServiceException as exc:
        report.record(error=f"the platform answered {exc}")
    except (LtiException, requests.RequestException) as exc:
        report.record(error=f"{type(exc).__name__}: {exc}")
    else:
        report.record(score=json.loads(grade.get_value()))
    return report
