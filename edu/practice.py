"""Spaced practice: a due concept gets a case the trainee has never seen, drawn from the
template's pool at the card's difficulty level, or generated at that level when none is
left; the answer is scored, rated, and the card rescheduled by FSRS (``edu.spacing``).

A practice case asks what the finding is (among the findings its generator and the other
templates of its modality know) and, when the case has a lesion mask, where the lesion is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone
from fsrs import Rating

from cases.models import CaseTemplate, GenerationJob, SyntheticPatient, TemplateVersion
from edu import difficulty, keys, scoring, spacing
from edu.models import (
    ConceptCard,
    DifficultyDial,
    PracticeGeneration,
    Quiz,
    QuizItem,
    ReviewLog,
    ground_truth_exists,
)

# Cases a practice generation job makes at once: the next trainees at that level find some.
GENERATE_CASES = 4
MAX_OPTIONS = 5


class PracticeError(ValueError):
    """A practice action refused (answered already, a malformed answer)."""


def practicable_templates() -> QuerySet[CaseTemplate]:
    """Templates a trainee may start practising: those with approved cases."""
    return CaseTemplate.objects.filter(
        versions__cases__status=SyntheticPatient.Status.APPROVED
    ).distinct()


def _peak(version: TemplateVersion) -> float:
    progression = version.progression or {}
    return max(progression.get("severity_from", 0.0), progression.get("severity_to", 0.0))


def unseen_cases(card: ConceptCard) -> list[SyntheticPatient]:
    """Cases of the card's concept the trainee has never met, in the order they were made.

    Approved cases of the template, and cases practice generation made that experts have
    not rejected; at the card's level; not hidden from the trainee (a Turing study they
    rate); never drawn for them before, nor in a quiz they may take or have taken (practice
    would give a quiz's answer away, a quiz would show a practised picture again)."""
    trainee = card.trainee
    quizzes = Quiz.objects.filter(
        Q(pk__in=Quiz.objects.for_trainee(trainee)) | Q(attempts__user=trainee)
    )
    made_for_practice = Q(job__practice__template=card.template) & ~Q(
        status=SyntheticPatient.Status.REJECTED
    )
    candidates = (
        SyntheticPatient.objects.not_hidden_from(trainee)
        .filter(template_version__template=card.template)
        .filter(Q(status=SyntheticPatient.Status.APPROVED) | made_for_practice)
        .exclude(pk__in=ReviewLog.objects.filter(trainee=trainee).values("case"))
        .exclude(pk__in=QuizItem.objects.filter(quiz__in=quizzes).values("case"))
        .annotate(
            peak=Max("studies__severity"),
            truncation=Max("studies__series__instances__truncation"),
        )
        .select_related("template_version")
        .order_by("created_at", "pk")
    )
    dial = DifficultyDial.for_template(card.template).as_dial()
    chosen = []
    for case in candidates:
        peak = _peak(case.template_version)
        scale = case.peak / peak if peak > 0 and case.peak is not None else 1.0
        if dial.level_of(scale, case.truncation or 1.0) == card.level:
            chosen.append(case)
    return chosen


def next_due(trainee: Any, now: datetime | None = None) -> ConceptCard | None:
    """The trainee's most overdue card. Due concepts come one after another unnamed, so a
    case's concept is not given away before it is answered."""
    cards = ConceptCard.objects.filter(trainee=trainee, due__lte=now or timezone.now())
    return cards.order_by("due", "pk").first()


@dataclass(frozen=True)
class Draw:
    """What a due card gets: a review to answer, or the job making cases for it."""

    review: ReviewLog | None
    job: GenerationJob | None


def draw(card: ConceptCard, now: datetime | None = None) -> Draw:
    """The card's open review, or a new one on an unseen case; when no case is left, the
    generation job that makes some at the card's level (launched if none is running)."""
    open_review = card.reviews.filter(answered_at__isnull=True).first()
    if open_review is not None:
        return Draw(open_review, None)
    cases = unseen_cases(card)
    if not cases:
        return Draw(None, generation_for(card))
    case = random.choice(cases)
    seed = random.randrange(2**31)
    try:
        with transaction.atomic():
            review = ReviewLog.objects.create(
                card=card,
                trainee=card.trainee,
                case=case,
                seed=seed,
                options=finding_options(case, seed),
                shown_at=now or timezone.now(),
            )
    except IntegrityError:  # a concurrent request drew first
        return Draw(card.reviews.get(answered_at__isnull=True), None)
    return Draw(review, None)


def generation_for(card: ConceptCard) -> GenerationJob:
    """A queued or running practice job for the card's concept, or a new one."""
    running = (
        PracticeGeneration.objects.filter(template=card.template, level=card.level)
        .filter(job__in=GenerationJob.objects.active())
        .select_related("job")
        .first()
    )
    if running is not None:
        return running.job
    dial = DifficultyDial.for_template(card.template).as_dial()
    with transaction.atomic():
        job = card.template.current.launch_job(
            requested_by=card.trainee,
            n_cases=GENERATE_CASES,
            severity_scale=dial.severity_scale(card.level),
            truncation=dial.truncation(card.level),
        )
        PracticeGeneration.objects.create(job=job, template=card.template, level=card.level)
    return job


# --- the questions of a practice case -----------------------------------------------------------


def _finding_label(finding: str) -> str:
    return finding.replace("_", " ").capitalize()


def finding_options(case: SyntheticPatient, seed: int) -> list[dict[str, Any]]:
    """Single best answer options: the case's finding and others its modality knows (those
    of its generator and of the other templates), drawn and ordered by ``seed``."""
    version = case.template_version
    others = set(version.generator.findings) | set(
        TemplateVersion.objects.filter(modality=version.modality).values_list("finding", flat=True)
    )
    others.discard(version.finding)
    rng = random.Random(seed)
    findings = [version.finding, *rng.sample(sorted(others), min(len(others), MAX_OPTIONS - 1))]
    rng.shuffle(findings)
    return [{"text": _finding_label(f), "correct": f == version.finding} for f in findings]


def questions(review: ReviewLog) -> list[dict[str, Any]]:
    """The questions of the review's case: ``{"id", "kind", "prompt", "options"?}``."""
    rows: list[dict[str, Any]] = []
    options = review.options
    if len(options) >= 2:
        rows.append(
            {
                "id": "finding",
                "kind": "single_best",
                "prompt": "What is the finding?",
                "options": options,
            }
        )
    if ground_truth_exists(review.case):
        rows.append(
            {
                "id": "lesion",
                "kind": "localisation",
                "prompt": "Click the lesion (any timepoint; a click within "
                f"{scoring.DEFAULT_TOLERANCE_MM:g} mm of its edge counts).",
            }
        )
    return rows


def _score(review: ReviewLog, question: dict[str, Any], response: Any) -> scoring.Scored:
    if not isinstance(response, dict):
        raise PracticeError(f"{question['prompt']} needs an answer")
    try:
        if question["kind"] == "single_best":
            return scoring.score_single_best(question["options"], response)
        lesions = [keys.lesion_of(image) for image in keys.images_of_case(review.case)]
        return scoring.score_localisation(lesions, response, scoring.DEFAULT_TOLERANCE_MM)
    except scoring.ResponseError as exc:
        raise PracticeError(f"{question['prompt']} {exc}") from exc


# --- answering ----------------------------------------------------------------------------------


def answer(review: ReviewLog, responses: dict[str, Any], now: datetime | None = None) -> ReviewLog:
    """Score the answers to the review's questions, rate them, and reschedule its card.

    The card is locked while it is reviewed; a review answered already is refused, so a
    repeated submit reschedules nothing twice. A wrong answer above level 1 brings the
    level below back at once; a streak of right answers opens the next level.
    """
    now = now or timezone.now()
    asked = questions(review)
    if not asked:
        raise PracticeError("this case has no question to practise on")
    scored = {q["id"]: _score(review, q, responses.get(q["id"])) for q in asked}
    score = sum(s.score for s in scored.values()) / len(scored)
    with transaction.atomic():
        card = ConceptCard.objects.select_for_update().get(pk=review.card_id)
        locked = ReviewLog.objects.select_for_update().get(pk=review.pk)
        if locked.is_answered:
            raise PracticeError("this case is answered already")
        seconds = (now - locked.shown_at).total_seconds()
        rating = spacing.rating_for(score, seconds)
        memory = spacing.review(card.memory, rating, now)
        card.state, card.step, card.stability = memory.state, memory.step, memory.stability
        card.difficulty, card.due, card.last_review = memory.difficulty, memory.due, now
        card.streak = 0 if rating == Rating.Again else card.streak + 1
        card.best_streak = max(card.best_streak, card.streak)
        card.save()
        locked.answered_at, locked.responses, locked.score = now, responses, score
        locked.detail = {key: {**s.detail, "score": s.score} for key, s in scored.items()}
        locked.rating, locked.due_after = int(rating), memory.due
        locked.save()
        dial = DifficultyDial.for_template(card.template).as_dial()
        opens = difficulty.level_to_open(dial, card.level, rating, card.streak)
        if opens is not None and opens > card.level:  # opened once, never hurried
            ConceptCard.objects.get_or_create(
                trainee=card.trainee, template=card.template, level=opens
            )
        elif opens is not None:  # the level below, due now
            ConceptCard.open(trainee=card.trainee, template=card.template, level=opens)
    return locked


# --- the practice page --------------------------------------------------------------------------


def day_streak(trainee: Any, today: datetime | None = None) -> int:
    """Days in a row, up to today (or yesterday, if nothing was practised today yet), with
    at least one answered practice case (days in the site's time zone)."""
    today_date = timezone.localdate(today)
    days = {
        timezone.localdate(moment)
        for moment in ReviewLog.objects.filter(
            trainee=trainee, answered_at__isnull=False
        ).values_list("answered_at", flat=True)
    }
    day = today_date if today_date in days else today_date - timedelta(days=1)
    count = 0
    while day in days:
        count += 1
        day -= timedelta(days=1)
    return count


def concept_rows(trainee: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per card: due or when, streaks, predicted recall now and recall measured (the share of
    right answers among reviews after the first)."""
    now = now or timezone.now()
    rows = []
    for card in ConceptCard.objects.filter(trainee=trainee).select_related("template"):
        ratings = list(
            card.reviews.filter(answered_at__isnull=False)
            .order_by("answered_at")
            .values_list("rating", flat=True)
        )
        later = ratings[1:]
        recalled = sum(r != Rating.Again for r in later)
        rows.append(
            {
                "card": card,
                "due": card.is_due(now),
                "reviews": len(ratings),
                "retrievability": card.retrievability(now),
                "retention": recalled / len(later) if later else None,
            }
        )
    return rows
