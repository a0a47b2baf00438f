"""LTI 1.3 in a real browser against a simulated platform, with a real Celery worker: an
instructor adds a Gantry quiz to a course through deep linking, a learner launches it from
the course, answers and finishes, and the worker sends the score to the platform's
gradebook."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group
from lti_tool.models import LtiRegistration

from edu.models import Question, Quiz, QuizItem
from lti.models import Platform, ScoreReport
from tests.edu.conftest import OPTIONS
from tests.lti.conftest import register
from tests.lti.platform import SimulatedPlatform

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lms(live_server):
    # The platform under the live server's host name: a browser keeps the tool's login-state
    # cookie (SameSite=Lax over plain HTTP) only for a launch posted from the same site.
    # Over HTTPS the cookie is SameSite=None and a platform on another site works the same.
    platform = SimulatedPlatform(
        tool_launch_url=f"{live_server.url}/lti/launch/",
        tool_jwks_url=f"{live_server.url}/lti/jwks/",
        host=urlsplit(live_server.url).hostname,
    )
    yield platform
    platform.close()


def _register(platform: SimulatedPlatform, cohort: Group) -> LtiRegistration:
    registration = register(platform, name="Course LMS")
    Platform.objects.create(registration=registration, cohort=cohort)
    return registration


def _one_question_quiz(educator, cohort, case) -> Quiz:
    quiz = Quiz.objects.create(title="Gliomas: one look", cohort=cohort, created_by=educator)
    item = QuizItem.objects.create(quiz=quiz, case=case, order=0)
    Question.objects.create(item=item, kind="single_best", prompt="Diagnosis?", options=OPTIONS)
    quiz.publish()
    return quiz


def test_deep_link_launch_and_gradebook_score(
    browser, live_server, lms, educator, make_cases, celery_worker, wait_for
):
    cohort = Group.objects.create(name="LMS: neuroradiology")
    quiz = _one_question_quiz(educator, cohort, make_cases(1)[0])
    registration = _register(lms, cohort)
    login_url = f"{live_server.url}/lti/login/{registration.uuid}/"
    errors: list[str] = []

    # The instructor adds the quiz to the course.
    teacher = browser.new_context(viewport={"width": 1200, "height": 900})
    teacher.on("weberror", lambda e: errors.append(str(e.error)))
    page = teacher.new_page()
    page.set_default_timeout(60_000)  # a launch is four requests across two servers
    page.goto(
        lms.login_url(login_url, user="teacher", hint="deep-link", target=lms.tool_launch_url)
    )
    page.check(f"input[name=quiz][value='{quiz.pk}']")
    page.click("#lti-pick button[type=submit]")
    page.wait_for_selector("#added")  # back in the platform, which made the link
    assert lms.refusals == []
    (link_id,) = lms.resource_links
    teacher.close()

    # A learner opens it from the course, answers and finishes.
    learner = browser.new_context(viewport={"width": 1200, "height": 900})
    learner.on("weberror", lambda e: errors.append(str(e.error)))
    page = learner.new_page()
    page.set_default_timeout(60_000)
    page.goto(lms.login_url(login_url, user="learner", hint=link_id, target=lms.tool_launch_url))
    page.wait_for_selector("#item-form")
    assert "/edu/attempts/" in page.url
    page.check("input[type=radio][value='0']")  # Glioma, the key
    page.click("#submit-answers")
    page.wait_for_selector("#score")
    page.click("#finish-attempt")
    wait_for(lambda: lms.scores, timeout=60, what="the score in the platform's gradebook")
    (score,) = lms.scores
    assert (score["scoreGiven"], score["scoreMaximum"]) == (1.0, 1.0)
    assert (score["userId"], score["gradingProgress"]) == ("learner-1", "FullyGraded")
    assert ScoreReport.objects.get().status == ScoreReport.Status.SENT
    assert lms.refusals == []
    assert errors == []
    learner.close()
