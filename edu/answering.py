"""Taking a quiz: saving and scoring an answer, idempotently."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from edu import keys, scoring
from edu.models import Answer, Attempt, AttemptError, Question, QuizItem


def score(attempt: Attempt, question: Question, response: dict[str, Any]) -> scoring.Scored:
    """Score ``response`` against the key of ``question`` as this attempt shows the item."""
    if not isinstance(response, dict):
        raise scoring.ResponseError("the response must be a JSON object")
    kind = question.kind
    if kind == Question.Kind.SINGLE_BEST:
        return scoring.score_single_best(question.options, response)
    if kind == Question.Kind.SEVERITY:
        return scoring.score_severity(
            keys.max_severity(question.item), question.tolerance, response
        )
    if kind == Question.Kind.FREE_TEXT:
        return scoring.score_free_text(response)
    images = keys.shown_images(attempt, question.item)
    if kind == Question.Kind.STAGING:
        return scoring.score_staging(keys.true_timepoints(images), response)
    return scoring.score_localisation([keys.lesion_of(i) for i in images], response)


def _time_on_item(attempt: Attempt, item: QuizItem, now: datetime) -> float | None:
    shown = attempt.shown_at.get(str(item.pk))
    return (now - parse_datetime(shown)).total_seconds() if shown else None


def submit(
    attempt: Attempt, question: Question, response: Any, now: datetime | None = None
) -> tuple[Answer, bool]:
    """Save and score an answer. Returns (answer, changed).

    A repeated submit never adds a row (one answer per question and attempt, enforced by a
    constraint). Once given, an answer is final, except in an unfinished exam that allows
    going back, where a new response replaces the old one.
    """
    now = now or timezone.now()
    attempt.expire_if_due(now)
    if attempt.is_finished:
        raise AttemptError("this attempt is finished")
    if question.item_id not in attempt.item_ids:
        raise AttemptError("that question is not part of this attempt")
    scored = score(attempt, question, response)
    fields = {
        "response": response,
        "score": scored.score,
        "detail": scored.detail,
        "answered_at": now,
        "time_on_item_s": _time_on_item(attempt, question.item, now),
    }
    existing = Answer.objects.filter(attempt=attempt, question=question).first()
    if existing is not None:
        if not attempt.may_change_answers():
            return existing, False
        Answer.objects.filter(pk=existing.pk).update(**fields)
        existing.refresh_from_db()
        return existing, True
    try:
        with transaction.atomic():
            return Answer.objects.create(attempt=attempt, question=question, **fields), True
    except IntegrityError:  # a concurrent duplicate submit won the race
        return Answer.objects.get(attempt=attempt, question=question), False
