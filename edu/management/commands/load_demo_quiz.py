"""Publish two practice quizzes for the demo trainees from the approved demo cases (serial
imaging; normal twins and priors), and let one expert review decide a demo case.

Run after ``load_demo``. Safe to run again: an existing demo quiz is kept as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from cases.models import CaseTemplate, SyntheticPatient
from edu.models import (
    CurationRule,
    Question,
    Quiz,
    QuizItem,
    ground_truth_exists,
    has_normal_twin,
)

TITLE = "Demo: serial imaging"
TWIN_TITLE = "Demo: normal or not, and what changed"
NO_FINDING = "No abnormality"


class Command(BaseCommand):
    help = "Publish the practice quizzes for the trainee group from the approved demo cases."

    def handle(self, *args: Any, **options: Any) -> None:
        self._one_review_approves()
        cases = self._one_case_per_template()
        if not cases:
            raise CommandError("no approved cases: run `manage.py load_demo` first")
        # "No abnormality" is always a choice: it is one for a trainee looking at any study.
        diagnoses = [*sorted({case.template_version.diagnosis for case in cases}), NO_FINDING]
        self._publish(
            TITLE,
            "One case per demo template: diagnosis, staging, localisation.",
            [(case, diagnoses) for case in cases],
            self._item,
        )
        kinds = list(TWIN_KINDS)
        twinned = [
            case
            for case in SyntheticPatient.objects.cases()
            .filter(status=SyntheticPatient.Status.APPROVED)
            .order_by("pk")
            if has_normal_twin(case) and ground_truth_exists(case)
        ]
        self._publish(
            TWIN_TITLE,
            "Demo cases beside their normal twins (the same synthetic patient without the "
            "finding), compared with their priors, or shown as themselves or their twins.",
            # A case is one item of a quiz, and each twin question shows it its own way.
            [(case, kinds[i % len(kinds)]) for i, case in enumerate(twinned)],
            self._twin_item,
        )

    def _publish(
        self, title: str, description: str, items: list[tuple], add_item: Callable
    ) -> None:
        """A quiz for the trainee group: ``add_item(quiz, order, *item)`` for each item."""
        if Quiz.objects.filter(title=title).exists():
            self.stdout.write(f"Quiz {title!r} exists")
            return
        if not items:
            return
        with transaction.atomic():
            quiz = Quiz.objects.create(
                title=title,
                description=description,
                cohort=Group.objects.get(name="trainee"),
                created_by=User.objects.get(username="educator"),
            )
            for order, item in enumerate(items):
                add_item(quiz, order, *item)
            quiz.publish()
        self.stdout.write(f"Quiz {title!r} published with {len(items)} item(s) for trainees")

    def _one_review_approves(self) -> None:
        """The demo has one expert: one review decides a demo case (the default rule asks
        for two), so the cases educators generate in the demo can reach a quiz."""
        for template in CaseTemplate.objects.filter(curation_rule__isnull=True):
            CurationRule.objects.create(template=template, min_reviews=1)

    def _one_case_per_template(self) -> list[SyntheticPatient]:
        cases = []
        for template in CaseTemplate.objects.all():
            case = (
                SyntheticPatient.objects.cases()
                .filter(
                    template_version__template=template, status=SyntheticPatient.Status.APPROVED
                )
                .order_by("case_index")
                .first()
            )
            if case is not None:
                cases.append(case)
        return cases

    def _item(self, quiz: Quiz, order: int, case: SyntheticPatient, diagnoses: list[str]) -> None:
        item = QuizItem.objects.create(quiz=quiz, case=case, order=order)
        version = case.template_version
        questions = [
            Question(
                kind=Question.Kind.SINGLE_BEST,
                prompt="What is the most likely diagnosis?",
                options=[
                    {
                        "text": diagnosis,
                        "correct": diagnosis == version.diagnosis,
                        "feedback": version.discussion if diagnosis == version.diagnosis else "",
                    }
                    for diagnosis in diagnoses
                ],
                explanation=version.teaching_points,
            ),
            Question(
                kind=Question.Kind.STAGING,
                prompt="Order the studies from earliest to latest.",
                explanation="Compare the size of the lesion between studies.",
            ),
        ]
        if ground_truth_exists(case):
            questions.append(
                Question(
                    kind=Question.Kind.LOCALISATION,
                    prompt="Click the lesion (on any study).",
                    explanation=version.findings_text,
                )
            )
        _save(item, questions)

    def _twin_item(self, quiz: Quiz, order: int, case: SyntheticPatient, kind: str) -> None:
        item = QuizItem.objects.create(quiz=quiz, case=case, order=order)
        prompt, explanation = TWIN_KINDS[kind]
        _save(item, [Question(kind=kind, prompt=prompt, explanation=explanation)])


TWIN_KINDS = {
    Question.Kind.WHICH_ABNORMAL: (
        "Which of these two studies is abnormal?",
        "The other study is the same synthetic patient without the finding.",
    ),
    Question.Kind.CHANGE: (
        "What changed since the prior study?",
        "Growth of 20% or more in the longest diameter is progression; a fall of 30% or more "
        "is a response (RECIST 1.1).",
    ),
    Question.Kind.IS_NORMAL: (
        "Is this study normal?",
        "Some attempts are shown the normal twin: the same patient without the finding.",
    ),
}


def _save(item: QuizItem, questions: list[Question]) -> None:
    for index, question in enumerate(questions):
        question.item = item
        question.order = index
        question.full_clean()
        question.save()
