"""Object rules of the edu app (see :mod:`gantry.permissions`)."""

from __future__ import annotations

from typing import Any

import rules

from gantry.permissions import holds


def quiz_of(obj: Any) -> Any:
    """The quiz a quiz, an item, a question or an answer belongs to."""
    from edu.models import Answer, Question, QuizItem

    if isinstance(obj, QuizItem):
        return obj.quiz
    if isinstance(obj, Question):
        return obj.item.quiz
    if isinstance(obj, Answer):
        return obj.attempt.quiz
    return obj


@rules.predicate
def is_quiz_author(user: Any, obj: Any) -> bool:
    return obj is not None and quiz_of(obj).is_author(user)


@rules.predicate
def is_attempt_trainee(user: Any, attempt: Any) -> bool:
    return attempt is not None and user.pk is not None and attempt.user_id == user.pk


# Edit a quiz (settings, items, questions, keys, publishing), read its results and grade its
# answers: its owner and co-authors. The object may be the quiz or one of its items,
# questions or answers.
rules.add_perm("edu.edit_quiz", holds("edu.manage_quiz") & is_quiz_author)
# Answer, finish, read and retry an attempt: its trainee (or reader) alone; to anyone else it
# does not exist.
rules.add_perm("edu.take_attempt", is_attempt_trainee)
