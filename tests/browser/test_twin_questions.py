"""Normal twins and priors in a real browser: an educator adds a "which of these is
abnormal?", a "what changed since the prior?" and an "is this normal?" question to three
twinned cases and sets the rate of twins; a trainee answers each, the first two with their
images side by side, and sees each scored."""

import pytest
from django.contrib.auth.models import Group

from cases.generation import worker
from edu import keys
from edu.models import Attempt, Quiz, QuizItem
from tests.browser.quiz_page import logged_in_page
from tests.factories import GenerationJobFactory, TemplateVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _twinned_cases(generator_model, n):
    version = TemplateVersionFactory(generator=generator_model)
    job = GenerationJobFactory(template_version=version, n_cases=n, with_twins=True)
    worker.run_generation_job(job_pk=job.pk)
    job.cases.cases().update(status="approved")
    return list(job.cases.cases().order_by("pk"))


def _build_quiz(browser, live_server, educator, cases, cohort, errors):
    context, page = logged_in_page(browser, live_server, educator, errors)
    page.goto(f"{live_server.url}/edu/quizzes/new/")
    page.fill("input[name=title]", "Normal or not")
    page.select_option("select[name=cohort]", str(cohort.pk))
    page.fill("input[name=normal_twin_rate]", "1")  # every 'is this normal?' shows the twin
    page.click("form.stacked button[type=submit]")
    for case in cases:
        page.check(f"input[name=cases][value='{case.pk}']")
    page.click("#add-items-form button[type=submit]")
    page.wait_for_selector("section.edu-item")
    quiz = Quiz.objects.get(title="Normal or not")
    questions = [
        ("which_abnormal", "Pick the abnormal image.", {}),
        ("change", "The lesion since the first study?", {"prior_study": "1", "current_study": "3"}),
        ("is_normal", "Normal or abnormal?", {}),
    ]
    for case, (kind, prompt, extra) in zip(cases, questions, strict=True):
        item = QuizItem.objects.get(quiz=quiz, case=case).pk
        section = f"section.edu-item[data-item='{item}']"
        page.click(f"{section} summary")
        page.select_option(f"select[name=i{item}-kind]", kind)
        page.fill(f"input[name=i{item}-prompt]", prompt)
        for name, value in extra.items():
            page.fill(f"input[name=i{item}-{name}]", value)
        page.click(f"{section} form.question-form button[type=submit]")
        page.wait_for_selector(f"{section} li:has-text('{prompt}')")
    page.click("#publish-form button")
    page.wait_for_selector("text=Published to cohort-a")
    context.close()
    quiz.refresh_from_db()
    return quiz


def test_a_trainee_answers_each_twin_question(
    live_server, browser, trainee, educator, generator_model
):
    errors: list[str] = []
    cases = _twinned_cases(generator_model, 3)
    cohort = Group.objects.create(name="cohort-a")
    trainee.groups.add(cohort)
    quiz = _build_quiz(browser, live_server, educator, cases, cohort, errors)
    assert quiz.is_published
    assert quiz.normal_twin_rate == 1.0

    context, page = logged_in_page(browser, live_server, trainee, errors)
    page.goto(f"{live_server.url}/edu/quizzes/")
    page.click(f"tr[data-quiz='{quiz.pk}'] button")
    attempt = Attempt.objects.get(user=trainee)
    items = attempt.items()
    kinds = [item.questions.get().kind for item in items]
    assert kinds == ["which_abnormal", "change", "is_normal"]

    for position, item in enumerate(items):
        page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
        question = item.questions.get()
        images = keys.shown_images(attempt, item)
        page_text = page.content()
        for case in cases:  # nothing on the page names either patient
            assert case.patient_id not in page_text
            assert case.normal_twin.patient_id not in page_text
        if question.kind == "which_abnormal":
            assert page.get_attribute("#gantry-viewer", "data-layout").endswith("x2")
            abnormal = keys.abnormal_index(item, images)
            page.check(f"input[name=q{question.pk}_image][value='{abnormal}']")
        elif question.kind == "change":
            assert page.get_attribute("#gantry-viewer", "data-layout").endswith("x2")
            assert "Prior: timepoint 1" in page.inner_text("#gantry-viewer")
            change = keys.true_change(images)["true"]
            page.check(f"input[name=q{question.pk}_change][value='{change}']")
        else:
            assert {image.series.study.patient_id for image in images} == {item.case.normal_twin.pk}
            page.check(f"input[name=q{question.pk}_normal][value='yes']")
        page.click("#submit-answers")
        page.wait_for_selector(".feedback")
        assert page.locator(f".question-{question.kind} .feedback.right").count() == 1
        if question.kind == "is_normal":
            assert "normal twin" in page.inner_text("#case-diagnosis")
        if position + 1 < len(items):
            page.click("#next-item")

    assert page.get_attribute("#score", "data-percent") == "100.0"
    assert attempt.score()["percent"] == 100.0
    assert errors == []
    context.close()
