"""The practice schedule is FSRS's own: the same ratings at the same times give the same due
dates as the library's Scheduler; ratings come from the answers."""

from datetime import UTC, datetime, timedelta

import pytest
from fsrs import Card, Rating, Scheduler

from edu import difficulty, spacing

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# (hours after the previous review, rating): learning steps, review, a lapse, relearning.
SESSION = [
    (0, Rating.Good),
    (0.2, Rating.Good),
    (24, Rating.Easy),
    (24 * 9, Rating.Good),
    (24 * 30, Rating.Again),
    (0.25, Rating.Hard),
    (2, Rating.Good),
    (24 * 6, Rating.Good),
]


def test_due_dates_are_the_librarys():
    library = Scheduler(enable_fuzzing=False)
    card = Card(due=START)
    memory = spacing.MemoryState.new(START)
    at = START
    dues = []
    for hours, rating in SESSION:
        at += timedelta(hours=hours)
        card, _ = library.review_card(card, rating, at)
        memory = spacing.review(memory, rating, at)
        assert memory.due == card.due
        assert (memory.state, memory.step) == (card.state.value, card.step)
        assert memory.stability == pytest.approx(card.stability)
        dues.append(memory.due)
    # The schedule really spreads out: minutes while learning, then days, weeks.
    assert dues[0] - START == timedelta(minutes=10)
    assert dues[3] - dues[2] > timedelta(days=7)


def test_retrievability_is_the_librarys():
    memory = spacing.review(spacing.MemoryState.new(START), Rating.Good, START)
    later = START + timedelta(days=5)
    expected = Scheduler(enable_fuzzing=False).get_card_retrievability(
        Card(
            state=memory.state,
            step=memory.step,
            stability=memory.stability,
            difficulty=memory.difficulty,
            due=memory.due,
            last_review=memory.last_review,
        ),
        later,
    )
    assert spacing.retrievability(memory, later) == pytest.approx(expected)
    assert spacing.retrievability(spacing.MemoryState.new(START), later) is None


@pytest.mark.parametrize(
    ("score", "seconds", "rating"),
    [
        (0.0, 5, Rating.Again),
        (0.5, 5, Rating.Hard),
        (1.0, 60, Rating.Good),
        (1.0, None, Rating.Good),
        (1.0, 12, Rating.Easy),
    ],
)
def test_the_answer_gives_the_rating(score, seconds, rating):
    assert spacing.rating_for(score, seconds) == rating


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        spacing.review(spacing.MemoryState.new(START), Rating.Good, datetime(2026, 3, 2))


def test_the_dial_runs_from_the_template_to_small_atypical_lesions():
    dial = difficulty.Dial(levels=4, hardest_severity_scale=0.4)
    assert dial.severity_scale(1) == 1.0
    assert dial.severity_scale(4) == pytest.approx(0.4)
    assert dial.truncation(1) == pytest.approx(0.6)
    assert dial.truncation(4) == pytest.approx(1.0)
    for level in range(1, 5):
        assert dial.level_of(dial.severity_scale(level), dial.truncation(level)) == level
    assert dial.level_of(1.0, 0.8) == 1  # a template's own cases: full severity
    assert dial.level_of(0.45, 0.6) == 4
    flat = difficulty.Dial(levels=3, hardest_severity_scale=1.0)
    assert flat.level_of(1.0, 0.79) == 2  # severity alike: truncation decides
    with pytest.raises(ValueError, match="level must be 1 to 4"):
        dial.severity_scale(5)


def test_levels_move_with_the_answers():
    dial = difficulty.Dial(levels=3)
    assert difficulty.level_to_open(dial, 1, Rating.Good, 1) is None
    assert difficulty.level_to_open(dial, 1, Rating.Good, 2) == 2
    assert difficulty.level_to_open(dial, 3, Rating.Easy, 5) is None  # the hardest
    assert difficulty.level_to_open(dial, 2, Rating.Again, 0) == 1
    assert difficulty.level_to_open(dial, 1, Rating.Again, 0) is None
