"""Taking a quiz: saving and scoring an answer, idempotently; scoring again when the
reference standard of a question changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from edu import keys, scoring
from edu.models import Answer, Attempt, AttemptError, Question, QuizItem

_LOOK_UP = object()  # score(): find the reference key of the question


def score(
    attempt: Attempt,
    question: Question,
    response: dict[str, Any],
    *,
    reference_key: object = _LOOK_UP,
) -> scoring.Scored:
    """Score ``response`` against the key of ``question`` as this attempt shows the item.

    Trainees' answers to a question keyed by the reference readers are scored against
    their majority / median (``reference_key``, looked up unless given); the reference
    readers themselves against the built-in key.
    """
    if not isinstance(response, dict):
        raise scoring.ResponseError("the response must be a JSON object")
    kind = question.kind
    if kind == Question.Kind.SINGLE_BEST:
        return scoring.score_single_best(question.options, response)
    by_reference = question.uses_reference and not attempt.is_reference
    if by_reference and reference_key is _LOOK_UP:
        reference_key = keys.reference_key(question)
    if kind == Question.Kind.SEVERITY and by_reference:
        scored = scoring.score_severity(reference_key, question.tolerance, response)
        return scoring.Scored(scored.score, {**scored.detail, "reference": reference_key})
    if kind == Question.Kind.SEVERITY:
        return scoring.score_severity(
            keys.max_severity(question.item), question.tolerance, response
        )
    if kind == Question.Kind.FREE_TEXT and by_reference:
        return scoring.score_free_text(response, key=reference_key)
    if kind == Question.Kind.FREE_TEXT:
        return scoring.score_free_text(response)
    return _score_on_images(attempt, question, response)


def _score_on_images(
    attempt: Attempt, question: Question, response: dict[str, Any]
) -> scoring.Scored:
    """Questions keyed by the images this attempt shows (their order, lesions, or which
    patient they show)."""
    kind = question.kind
    images = keys.shown_images(attempt, question.item)
    if kind == Question.Kind.WHICH_ABNORMAL:
        abnormal = keys.abnormal_index(question.item, images)
        return scoring.score_which_abnormal(abnormal, len(images), response)
    if kind == Question.Kind.CHANGE:
        truth = keys.true_change(images)
        scored = scoring.score_change(truth["true"], response)
        return scoring.Scored(scored.score, {**scored.detail, **truth})
    if kind == Question.Kind.IS_NORMAL:
        return scoring.score_is_normal(keys.shows_twin(attempt, question.item), response)
    if kind == Question.Kind.STAGING:
        return scoring.score_staging(keys.true_timepoints(images), response)
    return scoring.score_localisation(
        [keys.lesion_of(i) for i in images], response, question.tolerance_mm
    )


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

    The attempt's row is locked while the answer is written, and its state read again under
    the lock: ``Attempt.finish`` takes the same lock, so an answer is stored before its
    attempt's ``finished_at`` or refused, however the two requests interleave.
    """
    with transaction.atomic():
        locked = (
            Attempt.objects.select_for_update(of=("self",))
            .select_related("quiz")
            .get(pk=attempt.pk)
        )
        now = now or timezone.now()
        problem = _refusal(locked, question, now)  # an expired attempt is finished and kept
        if problem is None:
            scored = score(locked, question, response)
            fields = {
                "response": response,
                "score": scored.score,
                "detail": scored.detail,
                "answered_at": now,
                "time_on_item_s": _time_on_item(locked, question.item, now),
            }
            answer, changed = _save(locked, question, fields)
    if problem is not None:
        attempt.refresh_from_db(fields=["finished_at"])
        raise AttemptError(problem)
    if changed and attempt.is_reference and question.uses_reference:
        rescore(question)
    return answer, changed


def _refusal(attempt: Attempt, question: Question, now: datetime) -> str | None:
    """Why the (locked) attempt takes no answer to ``question`` now; None if it takes one."""
    attempt.expire_if_due(now)
    if attempt.timed_out:
        return (
            f"time is up: the {attempt.quiz.time_limit_minutes}-minute limit has passed, "
            "the attempt was finished and takes no more answers"
        )
    if attempt.is_finished:
        return "this attempt is finished"
    if question.item_id not in attempt.item_ids:
        return "that question is not part of this attempt"
    return None


def _save(attempt: Attempt, question: Question, fields: dict[str, Any]) -> tuple[Answer, bool]:
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


def rescore(question: Question) -> int:
    """Score the trainees' answers to ``question`` again (its reference standard or its key
    source changed); answers an educator graded by hand keep their grade. Returns how many
    answers were scored."""
    answers = list(
        Answer.objects.filter(
            question=question, attempt__is_reference=False, graded_by__isnull=True
        ).select_related("attempt__quiz")
    )
    reference_key = keys.reference_key(question) if question.uses_reference else _LOOK_UP
    for answer in answers:
        scored = score(answer.attempt, question, answer.response, reference_key=reference_key)
        answer.score, answer.detail = scored.score, scored.detail
    Answer.objects.bulk_update(answers, ["score", "detail"], batch_size=500)
    return len(answers)
