"""What a trainee sees of an attempt, for the attempt pages and the attempt API alike: never
a key before it is revealed.

The view is built field by field (a whitelist), not from model fields, so that a new
key-bearing field on a model cannot leak by default.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from cases.models import Instance
from edu import keys, shown
from edu.models import Answer, Attempt, Question, QuizItem

LETTERS = "ABCDEFGHIJKLMNOPQRST"


def _feedback(question: Question, answer: Answer, images: list) -> dict[str, Any]:
    """What the trainee learns once the answer is revealed."""
    feedback: dict[str, Any] = {"explanation": question.explanation}
    if question.kind == Question.Kind.SINGLE_BEST:
        feedback["correct_option"] = answer.detail.get("correct")
        feedback["option_feedback"] = [o.get("feedback", "") for o in question.options]
    elif question.kind == Question.Kind.STAGING:
        truth = keys.true_timepoints(images)
        feedback["true_order"] = sorted(range(len(truth)), key=truth.__getitem__)
        feedback["tau"] = answer.detail.get("tau")
    elif question.kind == Question.Kind.LOCALISATION:
        feedback.update(
            hit=answer.detail.get("hit"),
            inside=answer.detail.get("inside"),
            distance_mm=answer.detail.get("distance_mm"),
            tolerance_mm=question.tolerance_mm,
            outlines=[keys.outline(keys.lesion_of(image)) for image in images],
        )
    elif question.kind == Question.Kind.SEVERITY and "reference" in answer.detail:
        feedback.update(reference_value=answer.detail["reference"], tolerance=question.tolerance)
    elif question.kind == Question.Kind.SEVERITY:
        feedback.update(true_value=keys.max_severity(question.item), tolerance=question.tolerance)
    elif question.kind == Question.Kind.FREE_TEXT and "reference" in answer.detail:
        feedback["reference_answer"] = answer.detail["reference"]
    elif question.kind == Question.Kind.WHICH_ABNORMAL:
        feedback["abnormal_image"] = answer.detail.get("abnormal")
    elif question.kind == Question.Kind.CHANGE:
        feedback.update(
            {
                "true_change": answer.detail.get("true"),
                **{k: answer.detail.get(k) for k in ("prior_size", "current_size", "unit")},
            }
        )
    elif question.kind == Question.Kind.IS_NORMAL:
        feedback["was_normal"] = answer.detail.get("truth")
    return feedback


# What a revealed item says of a normal twin shown in its case's place.
TWIN_DIAGNOSIS = (
    "Normal: this was the normal twin of a case, the same synthetic patient generated "
    "without the finding."
)


def case_text(
    item: QuizItem, *, revealed: bool, unknown_case: bool, twin: bool = False
) -> dict[str, str]:
    """The case's text as the trainee may read it now. The history (shared by a case and its
    normal twin) tells neither apart; once revealed, a twin shown in the case's place is
    said to be normal, with the case's teaching points."""
    version = item.case.template_version
    if revealed and twin:
        return {
            "history": item.case.history,
            "diagnosis": TWIN_DIAGNOSIS,
            "teaching_points": version.teaching_points,
        }
    if revealed:
        return {
            "history": item.case.history,
            "findings": version.findings_text,
            "diagnosis": version.diagnosis,
            "discussion": version.discussion,
            "teaching_points": version.teaching_points,
        }
    return {} if unknown_case else {"history": item.case.history}


def item_view(attempt: Attempt, item: QuizItem, answers: dict[int, Answer]) -> dict[str, Any]:
    """One item as the trainee sees it now.

    A question's score and feedback come with its answer in practice, at the end in exams;
    the case text (unknown-case mode) once every question of the item is answered.
    """
    images = keys.shown_images(attempt, item)
    questions = list(item.questions.all())
    answered = all(q.pk in answers for q in questions)
    revealed = attempt.reveals(answered)
    rows = []
    for q in questions:
        answer = answers.get(q.pk)
        row: dict[str, Any] = {
            "id": q.pk,
            "kind": q.kind,
            "kind_label": q.get_kind_display(),
            "prompt": q.prompt,
            "points": q.points,
        }
        if q.kind == Question.Kind.SINGLE_BEST:
            row["options"] = [o["text"] for o in q.options]
        if q.kind == Question.Kind.LOCALISATION:
            row["within_mm"] = q.tolerance_mm  # how near the lesion a click counts
        if answer is not None:
            row["response"] = answer.response
            if attempt.reveals(True):
                row["score"] = answer.score
                row["feedback"] = _feedback(q, answer, images)
        rows.append(row)
    labels = image_labels(attempt, item, len(images))
    return {
        "item": item.pk,
        "answered": answered,
        "revealed": revealed,
        "images": [
            reverse("edu:attempt-image", args=[attempt.pk, item.pk, i]) for i in range(len(images))
        ],
        "contrasts": [contrasts(attempt, item, i, image) for i, image in enumerate(images)],
        "labels": labels,
        "questions": rows,
        "case": case_text(
            item,
            revealed=revealed,
            unknown_case=attempt.quiz.unknown_case,
            twin=keys.shows_twin(attempt, item),
        ),
    }


def contrasts(
    attempt: Attempt, item: QuizItem, index: int, image: Instance
) -> list[dict[str, str]]:
    """The contrasts of the study shown as image ``index`` (``edu.shown.contrasts``), each
    addressed, like the image, by its place in the attempt."""

    def url(c: int) -> str:
        if c:
            return reverse("edu:attempt-contrast", args=[attempt.pk, item.pk, index, c])
        return reverse("edu:attempt-image", args=[attempt.pk, item.pk, index])

    return shown.contrasts(image, url)


def image_labels(attempt: Attempt, item: QuizItem, n_images: int) -> list[str]:
    """What the viewer calls each shown image: letters where the order is the question
    (staging, case and twin), prior and current in a comparison, else timepoints."""
    layout = item.layout
    if layout in (Question.Layout.SHUFFLED, Question.Layout.PAIR):
        return [f"Image {LETTERS[i]}" for i in range(n_images)]
    if layout == Question.Layout.PRIOR:
        studies = list(item.case.studies.all())
        prior, current = keys.change_question(item).compared_studies(len(studies))
        days = (studies[current].study_date - studies[prior].study_date).days
        return [
            f"Prior: timepoint {prior + 1}, {days} days earlier",
            f"Current: timepoint {current + 1}",
        ]
    return [f"Timepoint {i + 1}" for i in range(n_images)]


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    """The whole attempt as its trainee sees it: no key of an unrevealed item."""
    answers = {a.question_id: a for a in attempt.answers.all()}
    items = [item_view(attempt, item, answers) for item in attempt.items()]
    view: dict[str, Any] = {
        "id": attempt.pk,
        "quiz": attempt.quiz_id,
        "title": attempt.quiz.title,
        "is_exam": attempt.is_exam,
        "is_reference": attempt.is_reference,
        "allow_back": attempt.quiz.allow_back or not attempt.is_exam,
        "started_at": attempt.started_at.isoformat(),
        "deadline": attempt.deadline.isoformat() if attempt.deadline else None,
        "seconds_left": attempt.seconds_left(),
        "finished_at": attempt.finished_at.isoformat() if attempt.finished_at else None,
        "timed_out": attempt.timed_out,
        "items": items,
    }
    if not attempt.feedback_at_end or attempt.is_finished:
        view["score"] = attempt.score()
    return view
