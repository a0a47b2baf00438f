"""An educator's first day in a real browser: a generated case waits for reviews the demo's
single expert cannot give, the curation page says why and the educator approves it by hand;
the quiz builder shows the case's last study, finding and severity; a single-best-answer
question without a correct option is refused in the page with what was typed kept; the quiz
is published, and editing it afterwards makes a new version."""

import pytest
from django.contrib.auth.models import Group

from cases.models import SyntheticPatient
from edu.models import Quiz
from tests.browser.quiz_page import logged_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_approve_by_hand_build_refused_question_publish_and_version(
    live_server, browser, educator, make_cases
):
    errors: list[str] = []
    case = make_cases(1, status="draft")[0]
    cohort = Group.objects.create(name="cohort-a")
    context, page = logged_in_page(browser, live_server, educator, errors)

    page.goto(f"{live_server.url}/edu/curation/")
    row = f"tr[data-case='{case.pk}']"
    assert page.inner_text(f"{row} .why") == (
        "No expert has reviewed it yet; the rule needs 2 reviews."
    )
    page.click(f"{row} button.approve-case")
    page.wait_for_selector("text=approved by hand")
    case.refresh_from_db()
    assert case.status == SyntheticPatient.Status.APPROVED

    page.goto(f"{live_server.url}/edu/quizzes/new/")
    page.fill("input[name=title]", "Week 1")
    page.select_option("select[name=cohort]", str(cohort.pk))
    page.click("form.stacked button[type=submit]")
    candidate = f"tr.candidate[data-case='{case.pk}']"
    page.wait_for_selector(candidate)
    page.wait_for_function(
        "s => document.querySelector(s + ' img.case-thumb').naturalWidth > 0", arg=candidate
    )
    assert page.inner_text(f"{candidate} .finding") == case.template_version.finding
    page.check(f"{candidate} input[name=cases]")
    page.click("#add-items-form button[type=submit]")

    item = page.get_attribute("section.edu-item", "data-item")
    page.click("section.edu-item summary")
    page.select_option(f"select[name=i{item}-kind]", "single_best")
    page.fill(f"input[name=i{item}-prompt]", "Which finding is shown?")
    page.fill(f"textarea[name=i{item}-options_text]", "Glioma\nAbscess")
    page.click("section.edu-item form.question-form button[type=submit]")
    page.wait_for_selector(".question-error")
    assert "exactly one option must be correct" in page.inner_text("section.edu-item")
    assert page.input_value(f"input[name=i{item}-prompt]") == "Which finding is shown?"
    assert len(errors) == 1  # the refusal's own 400
    assert "status of 400" in errors[0]
    errors.clear()
    page.fill(f"textarea[name=i{item}-options_text]", "* Glioma\nAbscess")
    page.click("section.edu-item form.question-form button[type=submit]")
    page.wait_for_selector("text=Question added.")

    page.click("#publish-form button")
    page.wait_for_selector("#frozen")
    assert page.locator(".question-form").count() == 0
    page.click("#new-version-form button")
    page.wait_for_selector("text=Version 2 is a draft copy")
    draft = Quiz.objects.get(version=2)
    assert draft.previous_version.is_published
    assert draft.items.get().questions.count() == 1
    assert errors == []
    context.close()
