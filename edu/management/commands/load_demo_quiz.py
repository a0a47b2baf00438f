"""Publish a practice quiz for the demo trainees from the approved demo cases, and let one
expert review decide a demo case.

Run after ``load_demo``. Safe to run again: an existing demo quiz is kept as it is.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from cases.models import CaseTemplate, SyntheticPatient
from edu.models import CurationRule, Question, Quiz, QuizItem, ground_truth_exists

TITLE = "Demo: serial imaging"


class Command(BaseCommand):
    help = "Publish a practice quiz for the trainee group from the approved demo cases."

    def handle(self, *args: Any, **options: Any) -> None:
        self._one_review_approves()
        if Quiz.objects.filter(title=TITLE).exists():
            self.stdout.write(f"Quiz {TITLE!r} exists")
            return
        cases = self._one_case_per_template()
        if not cases:
            raise CommandError("no approved cases: run `manage.py load_demo` first")
        diagnoses = sorted({case.template_version.diagnosis for case in cases})
        with transaction.atomic():
            quiz = Quiz.objects.create(
                title=TITLE,
                description="One case per demo template: diagnosis, staging, localisation.",
                cohort=Group.objects.get(name="trainee"),
                created_by=User.objects.get(username="educator"),
            )
            for order, case in enumerate(cases):
                self._item(quiz, order, case, diagnoses)
            quiz.publish()
        self.stdout.write(f"Quiz {TITLE!r} published with {len(cases)} item(s) for trainees")

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
        for index, question in enumerate(questions):
            question.item = item
            question.order = index
            question.full_clean()
            question.save()
