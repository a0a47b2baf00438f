"""The teaching path in a real browser: an expert approves a brain MRI case (T1, FLAIR and
T1c per study), an educator builds and publishes a quiz from it, a trainee takes it in
practice mode answering each question type, reading each study in its three contrasts and
marking the lesion on a FLAIR, sees feedback, and the score shown is the score the answers
deserve."""

import pytest
from django.contrib.auth.models import Group

from cases.models import SyntheticPatient
from edu import keys
from edu.models import Attempt, CurationRule, Quiz
from tests.browser.quiz_page import click_lesion_on_flair, logged_in_page
from tests.factories import add_brain_contrasts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    ("single_best", "Most likely diagnosis?", "* Glioma | Infiltrative mass.\nAbscess | Rim."),
    ("staging", "Order the studies in time.", ""),
    ("localisation", "Click the lesion.", ""),
    ("severity", "Estimate the maximum severity.", ""),
    ("free_text", "Describe the findings.", ""),
]


def _approve(browser, live_server, expert, case, errors):
    CurationRule.objects.create(template=case.template_version.template, min_reviews=1)
    context, page = logged_in_page(browser, live_server, expert, errors)
    page.goto(f"{live_server.url}/edu/reviews/cases/{case.pk}/")
    page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
    page.check("input[name=realism][value='5']")
    page.check("input[name=shows_finding][value='yes']")
    page.check("input[name=teaching_value][value='4']")
    page.click("form.edu-review button[type=submit]")
    page.wait_for_selector("text=the case is now approved")
    context.close()
    case.refresh_from_db()
    assert case.status == SyntheticPatient.Status.APPROVED


def _build_quiz(browser, live_server, educator, case, cohort, errors):
    context, page = logged_in_page(browser, live_server, educator, errors)
    page.goto(f"{live_server.url}/edu/quizzes/new/")
    page.fill("input[name=title]", "Week 1: gliomas")
    page.select_option("select[name=mode]", "practice")
    page.select_option("select[name=cohort]", str(cohort.pk))
    page.click("form.stacked button[type=submit]")
    page.check(f"input[name=cases][value='{case.pk}']")
    page.click("#add-items-form button[type=submit]")
    for kind, prompt, options in QUESTIONS:
        item = page.get_attribute("section.edu-item", "data-item")
        page.click("section.edu-item summary")
        page.select_option(f"select[name=i{item}-kind]", kind)
        page.fill(f"input[name=i{item}-prompt]", prompt)
        page.fill(f"textarea[name=i{item}-options_text]", options)
        page.fill(f"textarea[name=i{item}-explanation]", f"Teaching point for {kind}.")
        page.click("section.edu-item form.question-form button[type=submit]")
        page.wait_for_selector(f"text={prompt}")
    page.click("#publish-form button")
    page.wait_for_selector("text=Published to cohort-a")
    context.close()
    return Quiz.objects.get(title="Week 1: gliomas")


def test_expert_approves_educator_publishes_trainee_scores(
    live_server, browser, trainee, expert, educator, make_cases
):
    errors: list[str] = []
    case = make_cases(1, status="draft")[0]
    add_brain_contrasts(case)
    cohort = Group.objects.create(name="cohort-a")
    trainee.groups.add(cohort)
    _approve(browser, live_server, expert, case, errors)
    quiz = _build_quiz(browser, live_server, educator, case, cohort, errors)
    assert quiz.is_published
    assert quiz.items.get().questions.count() == 5

    context, page = logged_in_page(browser, live_server, trainee, errors)
    page.goto(f"{live_server.url}/edu/quizzes/")
    page.click(f"tr[data-quiz='{quiz.pk}'] button")
    page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
    assert page.locator("#case-history").count() == 0  # unknown-case mode

    # The answers, from the key (the test's oracle): right except the severity.
    attempt = Attempt.objects.get(user=trainee)
    item = attempt.items()[0]
    images = keys.shown_images(attempt, item)
    truth = keys.true_timepoints(images)
    questions = {q.kind: q for q in item.questions.all()}
    page.check(f"input[name=q{questions['single_best'].pk}_option][value='0']")
    for rank, shown in enumerate(sorted(range(len(images)), key=truth.__getitem__)):
        page.select_option(f"select[name=q{questions['staging'].pk}_pos_{shown}]", str(rank + 1))
    severity = keys.max_severity(item)
    wrong_severity = severity + 0.3 if severity <= 0.7 else severity - 0.3
    page.fill(f"input[name=q{questions['severity'].pk}_value]", f"{wrong_severity:.2f}")
    page.fill(f"textarea[name=q{questions['free_text'].pk}_text]", "A growing mass.")

    # Each shown study in its three contrasts, side by side: contrasts across, studies down.
    assert page.get_attribute("#gantry-viewer", "data-layout") == "2x3"
    for contrast in ("T1", "FLAIR", "T1c"):
        cell = f".gv-cell[data-study='0'][data-series='{contrast}']"
        page.wait_for_selector(f"{cell}[data-rendered]")
        assert f"Image A \u00b7 {contrast}" in page.inner_text(cell)

    # Click inside the lesion on a FLAIR: go to the shown study with the largest mask, aim at
    # the mask pixel nearest its centroid.
    click_lesion_on_flair(page, images)
    page.click("#submit-answers")

    page.wait_for_selector(".feedback")
    assert page.locator(".feedback").count() == 5
    assert page.locator(".question-localisation .feedback.right").count() == 1
    assert page.locator(".question-severity .feedback.wrong").count() == 1
    assert "Infiltrative mass." in page.inner_text(".question-single_best .feedback")
    assert "Teaching point for staging." in page.inner_text(".question-staging .feedback")
    assert page.inner_text("#case-diagnosis") == case.template_version.diagnosis
    # 3 of the 4 auto-scored points; the free text waits for a grade.
    assert page.get_attribute("#score", "data-percent") == "75.0"
    assert page.inner_text("#score") == "75.0%"
    assert attempt.score()["percent"] == 75.0
    assert errors == []
    context.close()
