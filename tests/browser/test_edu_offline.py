"""An attempt survives a lost connection: a trainee answers a practice item offline, the
answers wait in the browser, and reach the server exactly once when it is back."""

import json

import pytest
from django.contrib.auth.models import Group

from edu.models import Answer, Attempt, Question
from tests.edu.factories import QuestionFactory, QuizFactory, QuizItemFactory
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _responses(attempt):
    return sorted(
        (a.question.kind, json.dumps(a.response, sort_keys=True))
        for a in Answer.objects.filter(attempt=attempt).select_related("question")
    )


def test_answers_given_offline_are_kept_and_sent_once(
    live_server, browser, trainee, educator, make_cases
):
    cohort = Group.objects.create(name="cohort-offline")
    trainee.groups.add(cohort)
    quiz = QuizFactory(cohort=cohort, created_by=educator)
    item = QuizItemFactory(quiz=quiz, case=make_cases(1)[0])
    for kind in (Question.Kind.SINGLE_BEST, Question.Kind.SEVERITY, Question.Kind.FREE_TEXT):
        QuestionFactory(item=item, kind=kind)
    quiz.publish()
    questions = {q.kind: q.pk for q in item.questions.all()}

    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", trainee.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/edu/quizzes/")
    page.click(f"tr[data-quiz='{quiz.pk}'] button")
    page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
    attempt = Attempt.objects.get(user=trainee)
    key = f"gantry:answers:{attempt.pk}:{item.pk}"

    # The connection drops; the trainee answers and submits.
    context.set_offline(True)
    page.wait_for_function("() => navigator.onLine === false")
    page.check(f"input[name=q{questions['single_best']}_option][value='0']")
    page.fill(f"input[name=q{questions['severity']}_value]", "0.55")
    page.fill(f"textarea[name=q{questions['free_text']}_text]", "A growing mass.")
    page.click("#submit-answers")
    page.wait_for_selector("#offline-status:not([hidden])")
    assert "kept in this browser" in page.inner_text("#offline-status")
    kept = page.evaluate("k => localStorage.getItem(k)", key)
    assert "A growing mass." in kept
    assert not Answer.objects.filter(attempt=attempt).exists()

    # Back online: the kept answers are sent, the page shows the feedback.
    context.set_offline(False)
    page.wait_for_selector(".feedback", timeout=20_000)
    assert page.locator(".feedback").count() == 3
    assert page.evaluate("k => localStorage.getItem(k)", key) is None
    expected = [
        ("free_text", json.dumps({"text": "A growing mass."})),
        ("severity", json.dumps({"value": 0.55})),
        ("single_best", json.dumps({"option": 0})),
    ]
    assert _responses(attempt) == expected

    # The same answers kept again (a reply lost on the way back) are sent on reload, and
    # the server keeps them once.
    page.evaluate("([k, v]) => localStorage.setItem(k, v)", [key, kept])
    page.reload()
    page.wait_for_function("k => localStorage.getItem(k) === null", arg=key, timeout=20_000)
    page.wait_for_selector(".feedback")
    assert _responses(attempt) == expected
    assert Answer.objects.filter(attempt=attempt).count() == 3
    assert errors == []
    context.close()
