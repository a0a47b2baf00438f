"""load_demo_quiz: the demo's serial-imaging quiz and its quiz of normal twins and priors."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cases.generation import worker
from edu.management.commands.load_demo_quiz import TITLE, TWIN_TITLE
from edu.models import Question, Quiz
from tests.factories import GenerationJobFactory, TemplateVersionFactory, UserFactory


@pytest.fixture
def demo_educator(db):
    return UserFactory(username="educator", role="educator")


def approved_cases(generator_model, *, with_twins: bool, n: int = 1):
    version = TemplateVersionFactory(generator=generator_model)
    job = GenerationJobFactory(template_version=version, n_cases=n, with_twins=with_twins)
    worker.run_generation_job(job_pk=job.pk)
    job.cases.update(status="approved")
    return job.cases.cases()


def test_the_twin_quiz_asks_each_twin_question_of_a_twinned_case(demo_educator, generator_model):
    cases = list(approved_cases(generator_model, with_twins=True, n=3).order_by("pk"))
    call_command("load_demo_quiz", stdout=io.StringIO())
    serial = Quiz.objects.get(title=TITLE)
    twins = Quiz.objects.get(title=TWIN_TITLE)
    assert serial.is_published
    assert twins.is_published
    assert serial.cohort.name == twins.cohort.name == "trainee"
    asked = [(item.case_id, item.questions.get().kind) for item in twins.items.order_by("order")]
    assert asked == [
        (cases[0].pk, Question.Kind.WHICH_ABNORMAL),
        (cases[1].pk, Question.Kind.CHANGE),
        (cases[2].pk, Question.Kind.IS_NORMAL),
    ]
    assert serial.items.count() == 1  # one case per template
    out = io.StringIO()
    call_command("load_demo_quiz", stdout=out)  # again: both kept as they are
    assert f"Quiz {TWIN_TITLE!r} exists" in out.getvalue()
    assert Quiz.objects.filter(title__in=[TITLE, TWIN_TITLE]).count() == 2


def test_cases_without_twins_get_the_serial_quiz_only(demo_educator, generator_model):
    approved_cases(generator_model, with_twins=False).get()
    call_command("load_demo_quiz", stdout=io.StringIO())
    assert Quiz.objects.filter(title=TITLE).exists()
    assert not Quiz.objects.filter(title=TWIN_TITLE).exists()


def test_without_approved_cases_it_says_what_to_run(demo_educator):
    with pytest.raises(CommandError, match=r"run `manage\.py load_demo` first"):
        call_command("load_demo_quiz", stdout=io.StringIO())
