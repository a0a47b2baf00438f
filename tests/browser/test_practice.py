"""Spaced practice in a real browser: a trainee starts a concept, practises it when due on a
brain MRI case in the viewer (each study in its T1, FLAIR and T1c; names the finding, clicks
the lesion on a FLAIR), is rated and told when the concept comes back, and the practice page
then shows nothing due and the streak."""

import pytest

from edu import keys, practice
from edu.models import ConceptCard, ReviewLog
from tests.browser.quiz_page import click_lesion_on_flair, logged_in_page
from tests.factories import add_brain_contrasts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_trainee_practises_a_due_concept(live_server, browser, trainee, make_cases):
    errors: list[str] = []
    cases = make_cases(2)
    for case in cases:
        add_brain_contrasts(case)
    template = cases[0].template_version.template
    context, page = logged_in_page(browser, live_server, trainee, errors)
    page.click("header nav >> text=Practice")
    page.click(f"form[action='/edu/practice/templates/{template.pk}/start/'] button")
    assert page.inner_text("#due-count").startswith("1 concept due")
    page.click("#practise-due")
    page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
    assert template.title not in page.content()  # the concept is not named before the answer

    review = ReviewLog.objects.get(trainee=trainee)
    question = practice.questions(review)[0]
    right = next(i for i, option in enumerate(question["options"]) if option["correct"])
    page.check(f"input[name=qfinding_option][value='{right}']")
    images = keys.images_of_case(review.case)

    # Each study in its three contrasts, side by side, called by timepoint and contrast only.
    for contrast in ("T1", "FLAIR", "T1c"):
        cell = f".gv-cell[data-study='0'][data-series='{contrast}']"
        page.wait_for_selector(f"{cell}[data-rendered]")
        assert f"Timepoint 1 \u00b7 {contrast}" in page.inner_text(cell)
    html = page.content()
    for image in images:  # the stored descriptions ("Synthetic FLAIR t2") name the timepoint
        assert all(c.series.description not in html for c in keys.contrasts_of(image))

    # Click inside the lesion on the FLAIR of the study with the largest lesion.
    click_lesion_on_flair(page, images)
    page.click("#submit-answers")

    page.wait_for_selector("#practice-result")
    assert page.locator(".feedback.right").count() == 2
    rating = page.get_attribute("#practice-result", "data-rating")
    assert rating in ("Good", "Easy")  # right, rated by how fast
    assert page.inner_text("#case-diagnosis") == review.case.template_version.diagnosis
    card = ConceptCard.objects.get(trainee=trainee)
    assert card.due > card.last_review
    assert card.streak == 1

    page.click("#back-to-practice")
    page.wait_for_selector("#nothing-due")
    assert page.inner_text(f"#concepts tr[data-card='{card.pk}'] .streak") == "1 (1)"
    assert page.inner_text("#day-streak strong") == "1"
    assert errors == []
    context.close()
