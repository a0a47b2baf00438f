"""When a trainee practises a concept again: FSRS (the ``fsrs`` package) over plain values.

A concept card's memory state is stored as the columns of ``edu.models.ConceptCard``; this
module turns it into the library's ``Card``, lets the library's ``Scheduler`` review it,
and hands back the new state. Nothing of the schedule is computed here but the rating,
which comes from the trainee's answer rather than from a button: a finding recognised
and found is recalled, however the trainee feels about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fsrs import Card, Rating, Scheduler, State

# Fuzzing off: the same answers at the same times give the same due dates, which a trainee
# can be told and a test can check. Other settings are the library's defaults (desired
# retention 0.9; learning steps of 1 and 10 minutes; relearning 10 minutes).
SCHEDULER = Scheduler(enable_fuzzing=False)

# A fully right answer given within this many seconds is rated Easy.
EASY_WITHIN_S = 20.0


@dataclass(frozen=True)
class MemoryState:
    """A card's FSRS state: what ``ConceptCard`` stores, field for field."""

    state: int  # fsrs.State: 1 learning, 2 review, 3 relearning
    step: int | None  # learning or relearning step; None in review
    stability: float | None  # days for recall to fall to 90%; None before the first review
    difficulty: float | None  # 1 (easy) to 10 (hard); None before the first review
    due: datetime
    last_review: datetime | None

    @classmethod
    def new(cls, now: datetime) -> MemoryState:
        """A concept never practised, due at ``now``."""
        return cls(State.Learning.value, 0, None, None, now, None)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC)


def _card(memory: MemoryState) -> Card:
    return Card(
        card_id=0,  # the library needs one; rows are told apart by their primary key
        state=State(memory.state),
        step=memory.step,
        stability=memory.stability,
        difficulty=memory.difficulty,
        due=_utc(memory.due),
        last_review=_utc(memory.last_review) if memory.last_review else None,
    )


def review(memory: MemoryState, rating: Rating, at: datetime) -> MemoryState:
    """The state after a review rated ``rating`` at ``at``."""
    card, _log = SCHEDULER.review_card(_card(memory), rating, _utc(at))
    return MemoryState(
        card.state.value, card.step, card.stability, card.difficulty, card.due, card.last_review
    )


def retrievability(memory: MemoryState, at: datetime) -> float | None:
    """The predicted probability of recall at ``at``; None before the first review."""
    if memory.last_review is None:
        return None
    return SCHEDULER.get_card_retrievability(_card(memory), _utc(at))


def rating_for(score: float, seconds: float | None) -> Rating:
    """The FSRS rating an answer earns: nothing right is Again, part right Hard, all right
    Good, and all right within ``EASY_WITHIN_S`` seconds Easy."""
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score must lie in [0, 1], not {score}")
    if score == 0.0:
        return Rating.Again
    if score < 1.0:
        return Rating.Hard
    if seconds is not None and seconds <= EASY_WITHIN_S:
        return Rating.Easy
    return Rating.Good
