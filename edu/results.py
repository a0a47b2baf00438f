"""Reading results out of the database: a quiz's item analysis and a trainee's progress.

The arithmetic lives in ``edu.statistics`` and ``edu.agreement``; this module only
gathers the numbers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from cases.models import SyntheticPatient
from edu import agreement, keys
from edu.item_analysis import distractor_analysis, time_summary
from edu.models import Answer, Attempt, Question, Quiz, Review
from edu.statistics import histogram, item_analysis


def counted_attempts(quiz: Quiz) -> list[Attempt]:
    """Each trainee's first finished attempt (retries are practice and do not count, nor do
    reference readings)."""
    first: dict[int, Attempt] = {}
    for attempt in (
        quiz.attempts.filter(finished_at__isnull=False, retry_of__isnull=True, is_reference=False)
        .select_related("user")
        .prefetch_related("answers")
        .order_by("started_at")
    ):
        first.setdefault(attempt.user_id, attempt)
    return list(first.values())


def quiz_results(quiz: Quiz) -> dict[str, Any]:
    """Each counted attempt's score, and per question its item analysis: difficulty,
    discrimination, time per answer, and (single best answer) how each option was chosen."""
    questions = list(
        Question.objects.filter(item__quiz=quiz)
        .select_related("item__case")
        .order_by("item__order", "item__pk", "order", "pk")
    )
    attempts = counted_attempts(quiz)
    matrix = np.full((len(attempts), len(questions)), np.nan)
    choices: list[list[int | None]] = [[None] * len(attempts) for _ in questions]
    times: list[list[float | None]] = [[None] * len(attempts) for _ in questions]
    rows = []
    for i, attempt in enumerate(attempts):
        by_question = {a.question_id: a for a in attempt.answers.all()}
        for j, question in enumerate(questions):
            answer = by_question.get(question.pk)
            if answer is None:
                continue
            if answer.score is not None:
                matrix[i, j] = answer.score
            choices[j][i] = _option_chosen(question, answer.response)
            times[j][i] = answer.time_on_item_s
        rows.append({"attempt": attempt, "user": attempt.user, "score": attempt.score()})
    stats = item_analysis(matrix) if attempts else []
    filled = np.nan_to_num(matrix, nan=0.0)
    totals = filled.sum(axis=1)
    items = []
    for j, (question, stat) in enumerate(zip(questions, stats, strict=False)):
        options = None
        if question.kind == Question.Kind.SINGLE_BEST:
            analysis = distractor_analysis(
                choices[j],
                totals - filled[:, j],
                totals,
                [bool(o.get("correct")) for o in question.options],
            )
            options = list(zip([o["text"] for o in question.options], analysis, strict=True))
        items.append(
            {
                "number": j + 1,
                "question": question,
                "stats": stat,
                "time": time_summary(times[j]),
                "options": options,
            }
        )
    percents = [r["score"]["percent"] for r in rows if r["score"]["percent"] is not None]
    counts, edges = histogram(percents)
    return {
        "questions": questions,
        "items": items,
        "rows": rows,
        "histogram": {"counts": counts, "edges": edges},
        "ungraded": [a for attempt in attempts for a in attempt.answers.all() if a.score is None],
    }


def _option_chosen(question: Question, response: Any) -> int | None:
    if question.kind != Question.Kind.SINGLE_BEST or not isinstance(response, dict):
        return None
    option = response.get("option")
    return option if isinstance(option, int) and 0 <= option < len(question.options) else None


ITEM_CSV_HEADER = [
    "question",
    "case",
    "kind",
    "prompt",
    "option",
    "option_text",
    "correct",
    "answered",
    "chosen",
    "share",
    "upper_group_share",
    "lower_group_share",
    "difficulty",
    "discrimination",
    "upper_minus_lower",
    "functioning_distractor",
    "time_answers",
    "time_median_s",
    "time_mean_s",
    "time_q1_s",
    "time_q3_s",
]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def item_analysis_csv_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    """The item analysis as CSV rows (``ITEM_CSV_HEADER``): a row per question, then for a
    single-best-answer question a row per option. Empty cells where a figure is undefined."""
    out = []
    for entry in items:
        q, stat, time = entry["question"], entry["stats"], entry["time"]
        head = [str(entry["number"]), q.item.case.patient_id, q.kind, q.prompt]
        out.append(
            [
                *head,
                "",
                "",
                "",
                str(stat.answered),
                "",
                "",
                "",
                "",
                _number(stat.difficulty),
                _number(stat.discrimination),
                _number(stat.upper_lower),
                "",
                str(time.answered),
                *(_number(v) for v in (time.median_s, time.mean_s, time.q1_s, time.q3_s)),
            ]
        )
        for text, option in entry["options"] or []:
            functioning = option.functioning
            out.append(
                [
                    *head,
                    str(option.option + 1),
                    text,
                    "yes" if option.correct else "no",
                    "",
                    str(option.chosen),
                    _number(option.share),
                    _number(option.upper_share),
                    _number(option.lower_share),
                    "",
                    _number(option.discrimination),
                    _number(option.upper_minus_lower),
                    "" if functioning is None else ("yes" if functioning else "no"),
                    *[""] * 5,
                ]
            )
    return out


def describe_response(question: Question, response: dict[str, Any]) -> str:
    """One answer in words, for the educator's list of reference answers."""
    if question.kind == Question.Kind.SINGLE_BEST:
        option = response.get("option")
        return question.options[option]["text"] if option is not None else "—"
    if question.kind == Question.Kind.STAGING:
        return "order " + " → ".join(str(i + 1) for i in response.get("order", []))
    if question.kind == Question.Kind.LOCALISATION:
        image, x, y = (response.get(k) for k in ("image", "x", "y"))
        return f"image {image + 1} at ({x:.0f}, {y:.0f})"
    if question.kind == Question.Kind.SEVERITY:
        return f"{response.get('value'):.2f}"
    if question.kind == Question.Kind.WHICH_ABNORMAL:
        return f"image {response.get('image', 0) + 1}"
    if question.kind == Question.Kind.CHANGE:
        return str(response.get("change"))
    if question.kind == Question.Kind.IS_NORMAL:
        return "normal" if response.get("normal") else "abnormal"
    return str(response.get("text", ""))


def reference_readings(quiz: Quiz) -> dict[str, Any]:
    """The experts' reference readings of a quiz: who read it, their answer to each question,
    and the reference standard of the questions that can take one."""
    attempts = list(
        quiz.attempts.filter(is_reference=True).select_related("user").order_by("started_at")
    )
    answers = Answer.objects.filter(attempt__in=attempts).select_related("attempt__user")
    by_question: dict[int, list[Answer]] = defaultdict(list)
    for answer in answers.order_by("attempt__started_at"):
        by_question[answer.question_id].append(answer)
    questions = []
    for question in Question.objects.filter(item__quiz=quiz).order_by(
        "item__order", "item__pk", "order", "pk"
    ):
        eligible = question.kind in Question.REFERENCE_KINDS
        questions.append(
            {
                "question": question,
                "answers": [
                    (a.attempt.user.get_username(), describe_response(question, a.response))
                    for a in by_question[question.pk]
                ],
                "eligible": eligible,
                "key": keys.reference_key(question) if eligible else None,
            }
        )
    return {"readers": attempts, "questions": questions}


def trainee_progress(user: Any) -> dict[str, Any]:
    """Scores over time and accuracy per finding and per question type."""
    attempts = list(
        Attempt.objects.filter(user=user, finished_at__isnull=False, is_reference=False)
        .select_related("quiz")
        .order_by("finished_at")
    )
    answers = Answer.objects.filter(attempt__in=attempts, score__isnull=False).select_related(
        "question__item__case__template_version"
    )
    by_finding: dict[str, list[float]] = defaultdict(list)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for answer in answers:
        by_finding[answer.question.item.case.template_version.finding].append(answer.score)
        by_kind[answer.question.get_kind_display()].append(answer.score)
    return {
        "attempts": [(a, a.score()) for a in attempts],
        "by_finding": {k: float(np.mean(v)) for k, v in sorted(by_finding.items())},
        "by_kind": {k: float(np.mean(v)) for k, v in sorted(by_kind.items())},
    }


def _realism_table(reviews: Any) -> dict[Any, dict[Any, dict[int, int]]]:
    """group -> case -> {expert: realism}."""
    table: dict[Any, dict[int, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    for group, case, expert, realism in reviews:
        table[group][case][expert] = realism
    return table


def agreement_report() -> dict[str, list[dict[str, Any]]]:
    """Realism agreement per template and per generator model."""
    reviews = Review.objects.select_related("case__template_version")
    report = {}
    for name, key in (
        ("templates", "case__template_version__template__title"),
        ("generators", "case__template_version__generator__title"),
    ):
        rows = reviews.values_list(key, "case_id", "expert_id", "realism")
        report[name] = [
            {"group": group, "agreement": agreement.agreement(cases)}
            for group, cases in sorted(_realism_table(rows).items())
        ]
    return report


def generator_realism(generator_pk: int) -> dict[str, Any]:
    """Mean realism of a generator's reviewed cases, and how many reviews it rests on."""
    realism = list(
        Review.objects.filter(case__template_version__generator_id=generator_pk).values_list(
            "realism", flat=True
        )
    )
    cases = SyntheticPatient.objects.cases().filter(template_version__generator_id=generator_pk)
    return {
        "mean": float(np.mean(realism)) if realism else None,
        "reviews": len(realism),
        "approved": cases.filter(status=SyntheticPatient.Status.APPROVED).count(),
        "cases": cases.count(),
    }
