"""A trainee's first day in a real browser: a practice item whose click lands just outside
the lesion's edge counts within the question's tolerance in mm, and the lesion's outline and
the mark are drawn once answered; an exam item answered in part is saved and says so; the
summary and the progress page speak in words and their charts keep their labels whole."""

import numpy as np
import pytest
from django.contrib.auth.models import Group

from edu import keys
from edu.models import Answer, Attempt, Quiz
from tests.browser.quiz_page import click_image_point, logged_in_page, show_largest_lesion
from tests.edu.conftest import build_quiz

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Pixels of the viewer canvas drawn in the outline's yellow (#ffd23f).
YELLOW_PIXELS = """
() => {
  const canvas = document.querySelector('#gantry-viewer canvas');
  const rgba = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i] > 240 && rgba[i + 1] > 190 && rgba[i + 1] < 230 && rgba[i + 2] < 100) count++;
  }
  return count;
}
"""

# Every label of every chart lies inside its chart.
CHART_LABELS_INSIDE = """
() => Array.from(document.querySelectorAll('.edu-chart svg')).every((svg) => {
  const box = svg.getBoundingClientRect();
  return Array.from(svg.querySelectorAll('text')).every((text) => {
    const r = text.getBoundingClientRect();
    return r.left >= box.left - 1 && r.right <= box.right + 1 && r.height >= 11;
  });
})
"""


@pytest.fixture
def cohort(trainee):
    group = Group.objects.create(name="cohort-a")
    trainee.groups.add(group)
    return group


@pytest.fixture
def case(make_cases):
    return make_cases(1)[0]


def _outside_the_edge(mask):
    """(x, y) of a point one pixel to the right of the lesion's rightmost pixel on its row."""
    rows, cols = np.nonzero(mask)
    row = int(rows[np.argmax(cols)])
    return float(cols.max()) + 1.5, float(row) + 0.5


def test_practice_localisation_in_mm_with_the_outline_then_words_in_the_summary(
    live_server, browser, trainee, educator, cohort, case
):
    errors: list[str] = []
    quiz = build_quiz(educator, cohort, case)
    context, page = logged_in_page(browser, live_server, trainee, errors)
    page.goto(f"{live_server.url}/edu/quizzes/")
    page.click(f"tr[data-quiz='{quiz.pk}'] button")
    page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
    assert "within 5 mm of the lesion's edge" in page.inner_text(".localise-hint")
    assert "most severe study" in page.inner_text(".question-severity")

    attempt = Attempt.objects.get(user=trainee)
    item = attempt.items()[0]
    images = keys.shown_images(attempt, item)
    click_image_point(page, *_outside_the_edge(show_largest_lesion(page, images)))
    page.click("#submit-answers")

    page.wait_for_selector("#answers-saved")
    assert page.inner_text("#answers-saved") == "Saved: 1 answer."
    verdict = page.inner_text(".question-localisation .localise-verdict")
    assert "mm outside the lesion's edge, within the 5 mm tolerance" in verdict
    assert "px" not in verdict
    assert page.locator(".question-localisation .feedback.right").count() == 1
    page.wait_for_selector("#gantry-viewer[data-answer-overlays]")
    assert int(page.get_attribute("#gantry-viewer", "data-answer-overlays")) >= 1
    page.wait_for_function(f"() => ({YELLOW_PIXELS})() > 0")  # a function: polled without eval

    page.click("#finish-attempt")
    page.wait_for_selector(".summary-question")
    summary = page.inner_text("ol")
    assert "Click the lesion: 1.00" in summary
    assert "single_best" not in summary

    page.goto(f"{live_server.url}/edu/progress/")
    page.wait_for_selector(".edu-chart svg")
    assert "click the lesion" in page.inner_text(".edu-charts")
    assert page.evaluate(CHART_LABELS_INSIDE)
    assert errors == []
    context.close()


def test_an_exam_item_answered_in_part_is_saved_and_says_so(
    live_server, browser, trainee, educator, cohort, case
):
    errors: list[str] = []
    exam = build_quiz(educator, cohort, case, mode=Quiz.Mode.EXAM)
    context, page = logged_in_page(browser, live_server, trainee, errors)
    page.goto(f"{live_server.url}/edu/quizzes/")
    page.click(f"tr[data-quiz='{exam.pk}'] button")
    page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
    text = Attempt.objects.get(user=trainee).items()[0].questions.get(kind="free_text")
    page.fill(f"textarea[name=q{text.pk}_text]", "A mass in the left hemisphere.")
    page.click("#submit-answers")
    page.wait_for_selector("#answers-saved")
    assert page.inner_text("#answers-saved") == "Saved: 1 answer."
    page.reload()
    assert page.input_value(f"textarea[name=q{text.pk}_text]") == "A mass in the left hemisphere."
    assert Answer.objects.get(question=text).response == {"text": "A mass in the left hemisphere."}
    assert errors == []
    context.close()
