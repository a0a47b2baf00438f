"""A trainee takes a localisation question with touch, on a phone (390x844) and on a tablet
(1024x1366): the page fits the screen, a flick moves to the timepoint with the lesion, a
tap marks it, and the answer scores as inside the lesion."""

import numpy as np
import pytest
from django.contrib.auth.models import Group

from edu import keys
from edu.models import Attempt, Question
from tests.browser.touch import TouchScreen
from tests.edu.factories import QuestionFactory, QuizFactory, QuizItemFactory
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = [(390, 844), (1024, 1366)]
ACTIVE = "#gantry-viewer .gv-cell.gv-active"
IMAGE_TO_PAGE = """
([selector, x, y]) => {
  const element = document.querySelector(selector + ' .gv-image');
  const canvas = cornerstone.pixelToCanvas(element, {x, y});
  const rect = element.getBoundingClientRect();
  return [rect.left + canvas.x, rect.top + canvas.y];
}
"""


def lesion_point(image) -> tuple[float, float]:
    """The centre of the mask pixel nearest the lesion's centroid, in image pixels (x, y)."""
    rows, cols = np.nonzero(keys.lesion_of(image).mask)
    nearest = np.argmin(np.hypot(rows - rows.mean(), cols - cols.mean()))
    return float(cols[nearest]) + 0.5, float(rows[nearest]) + 0.5


def take_item_with_touch(browser, live_server, trainee, quiz, item, size, errors) -> None:
    width, height = size
    context = browser.new_context(
        viewport={"width": width, "height": height}, has_touch=True, is_mobile=True
    )
    context.set_default_timeout(60_000)  # a live server and a real worker share the machine
    context.on("weberror", lambda e: errors.append(str(e.error)))
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", trainee.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/edu/quizzes/")
    page.tap(f"tr[data-quiz='{quiz.pk}'] button")
    page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "page wider than screen"
    viewer = page.locator("#gantry-viewer").bounding_box()
    assert viewer["width"] >= 0.85 * width - 48  # the viewer is not squeezed beside the text

    attempt = Attempt.objects.get(user=trainee)
    images = keys.shown_images(attempt, item)
    areas = [int(lesion.mask.sum()) if (lesion := keys.lesion_of(i)) else 0 for i in images]
    target = int(np.argmax(areas))
    touch = TouchScreen(page)
    for _ in range(target):
        page.locator(ACTIVE).scroll_into_view_if_needed()
        box = page.locator(f"{ACTIVE} canvas").bounding_box()
        now = page.get_attribute("#gantry-viewer", "data-timepoint")
        touch.flick((box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2), -120)
        page.wait_for_function(
            "t => document.querySelector('#gantry-viewer').dataset.timepoint !== t", arg=now
        )
    assert page.get_attribute("#gantry-viewer", "data-timepoint") == str(target)
    page.locator(ACTIVE).scroll_into_view_if_needed()
    touch.tap(tuple(page.evaluate(IMAGE_TO_PAGE, [ACTIVE, *lesion_point(images[target])])))
    page.wait_for_selector("#gantry-viewer[data-marked]")
    assert page.get_attribute("#gantry-viewer", "data-marked").startswith(f"{target}:")
    page.tap("#submit-answers")
    page.wait_for_selector(".question-localisation .feedback")
    assert page.locator(".question-localisation .feedback.right").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


def test_localisation_by_touch_on_a_phone_and_a_tablet(
    live_server, browser, trainee, other_trainee, educator, make_cases
):
    cohort = Group.objects.create(name="cohort-touch")
    cohort.user_set.add(trainee, other_trainee)
    quiz = QuizFactory(cohort=cohort, created_by=educator)
    item = QuizItemFactory(quiz=quiz, case=make_cases(1)[0])
    QuestionFactory(item=item, kind=Question.Kind.LOCALISATION)
    quiz.publish()
    errors: list[str] = []
    for user, size in zip((trainee, other_trainee), SCREENS, strict=True):
        take_item_with_touch(browser, live_server, user, quiz, item, size, errors)
    assert errors == []
