"""A published practice quiz over one really generated case, with one question per type;
and a generated case with its normal twin."""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth.models import Group

from cases.generation import worker
from edu import keys
from edu.models import Question, Quiz, QuizItem
from tests.factories import GenerationJobFactory, TemplateVersionFactory

OPTIONS = [
    {"text": "Glioma", "correct": True, "feedback": "Infiltrative mass."},
    {"text": "Abscess", "correct": False, "feedback": "Would show a rim."},
    {"text": "Infarct", "correct": False, "feedback": "Follows a vascular territory."},
]


@pytest.fixture
def twinned_case(generator_model):
    version = TemplateVersionFactory(generator=generator_model)
    job = GenerationJobFactory(template_version=version, n_cases=1, with_twins=True)
    worker.run_generation_job(job_pk=job.pk)
    job.cases.update(status="approved")
    return job.cases.cases().get()


@pytest.fixture
def cohort(trainee):
    group = Group.objects.create(name="cohort-a")
    trainee.groups.add(group)
    return group


def build_quiz(educator, cohort, case, *, mode=Quiz.Mode.PRACTICE, publish=True, **settings):
    quiz = Quiz.objects.create(
        title="Brain tumours", mode=mode, cohort=cohort, created_by=educator, **settings
    )
    item = QuizItem.objects.create(quiz=quiz, case=case, order=0)
    for order, (kind, extra) in enumerate(
        [
            (Question.Kind.SINGLE_BEST, {"options": OPTIONS}),
            (Question.Kind.STAGING, {}),
            (Question.Kind.LOCALISATION, {}),
            (Question.Kind.SEVERITY, {"tolerance": 0.1}),
            (Question.Kind.FREE_TEXT, {}),
        ]
    ):
        question = Question(item=item, order=order, kind=kind, prompt=f"{kind}?", **extra)
        question.full_clean()
        question.save()
    if publish:
        quiz.publish()
    return quiz


@pytest.fixture
def case(make_cases):
    return make_cases(1)[0]


@pytest.fixture
def quiz(educator, cohort, case):
    return build_quiz(educator, cohort, case)


def perfect_responses(attempt, item):
    """The right answer to every auto-scored question, read from the key (as a test oracle)."""
    images = keys.shown_images(attempt, item)
    timepoints = keys.true_timepoints(images)
    with_lesion = next(
        d
        for d, image in enumerate(images)
        if (lesion := keys.lesion_of(image)) and lesion.mask.any()
    )
    rows, cols = np.nonzero(keys.lesion_of(images[with_lesion]).mask)
    by_kind = {q.kind: q for q in item.questions.all()}
    return {
        by_kind["single_best"]: {"option": 0},
        by_kind["staging"]: {"order": sorted(range(len(images)), key=timepoints.__getitem__)},
        by_kind["localisation"]: {
            "image": with_lesion,
            "x": float(cols[0]) + 0.5,
            "y": float(rows[0]) + 0.5,
        },
        by_kind["severity"]: {"value": keys.max_severity(item)},
        by_kind["free_text"]: {"text": "An enhancing mass."},
    }
