"""Exam mode's time limit: a countdown on the page, and a deadline the server enforces."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from edu.models import Answer, Attempt, Quiz
from tests.edu.conftest import build_quiz

pytestmark = pytest.mark.django_db


@pytest.fixture
def exam(educator, cohort, case):
    return build_quiz(educator, cohort, case, mode=Quiz.Mode.EXAM, time_limit_minutes=30)


def _start(client, quiz):
    reply = client.post(f"/edu/api/quizzes/{quiz.pk}/start/")
    assert reply.status_code == 201
    return reply.json()


def _age(state, minutes):
    """Pretend the attempt started ``minutes`` ago."""
    attempt = Attempt.objects.get(pk=state["id"])
    Attempt.objects.filter(pk=attempt.pk).update(
        started_at=attempt.started_at - timedelta(minutes=minutes)
    )


def _answer(client, state):
    question = next(q for q in state["items"][0]["questions"] if q["kind"] == "single_best")
    return client.post(
        f"/edu/api/attempts/{state['id']}/answers/",
        {"question": question["id"], "response": {"option": 0}},
        content_type="application/json",
    )


def test_the_page_shows_a_countdown(login, trainee, exam):
    client = login(trainee)
    state = _start(client, exam)
    assert 1795 <= state["seconds_left"] <= 1800
    page = client.get(reverse("edu:attempt-item", args=[state["id"], 0])).content.decode()
    left = int(re.search(r'id="countdown" data-seconds-left="(\d+)"', page).group(1))
    assert 1795 <= left <= 1800
    assert re.search(r'data-countdown="clock">(29:5\d|30:00)<', page)
    assert "js/edu-countdown.js" in page


def test_answers_before_the_deadline_count(login, trainee, exam):
    client = login(trainee)
    state = _start(client, exam)
    _age(state, 29)
    assert _answer(client, state).status_code == 201
    assert Answer.objects.filter(attempt_id=state["id"]).count() == 1


def test_answers_after_the_deadline_are_refused_and_the_attempt_finished(login, trainee, exam):
    client = login(trainee)
    state = _start(client, exam)
    _age(state, 31)
    reply = _answer(client, state)
    assert reply.status_code == 400
    assert "time is up: the 30-minute limit has passed" in reply.json()[0]
    assert not Answer.objects.exists()
    attempt = Attempt.objects.get(pk=state["id"])
    assert attempt.finished_at == attempt.deadline
    view = client.get(f"/edu/api/attempts/{state['id']}/").json()
    assert view["timed_out"] is True
    assert view["seconds_left"] is None
    assert view["score"]["percent"] == 0.0  # finished: the (empty) result is shown
    # Starting again resumes the finished exam; it still takes nothing.
    assert _start(client, exam)["id"] == state["id"]
    assert _answer(client, state).status_code == 400


def test_the_item_page_refuses_late_answers_with_a_message(login, trainee, exam):
    client = login(trainee)
    state = _start(client, exam)
    question = next(q for q in state["items"][0]["questions"] if q["kind"] == "single_best")
    url = reverse("edu:attempt-item", args=[state["id"], 0])
    _age(state, 31)
    reply = client.post(url, {f"q{question['id']}_option": 0})
    assert reply.status_code == 400
    page = reply.content.decode()
    assert 'id="answer-error"' in page
    assert "time is up" in page
    assert not Answer.objects.exists()
    page = client.get(url).content.decode()
    assert 'id="timed-out"' in page
    assert 'id="countdown"' not in page
    assert 'id="submit-answers"' not in page


def test_an_exam_ends_when_it_is_next_read_even_without_an_answer(login, trainee, exam):
    client = login(trainee)
    state = _start(client, exam)
    _age(state, 45)
    summary = client.get(reverse("edu:attempt-summary", args=[state["id"]])).content.decode()
    assert 'id="timed-out"' in summary
    attempt = Attempt.objects.get(pk=state["id"])
    assert attempt.finished_at == attempt.deadline


def test_practice_has_no_clock(login, trainee, educator, cohort, case):
    quiz = build_quiz(educator, cohort, case, time_limit_minutes=1)
    client = login(trainee)
    state = _start(client, quiz)
    assert state["deadline"] is None
    _age(state, 5)
    assert _answer(client, state).status_code == 201
    page = client.get(reverse("edu:attempt-item", args=[state["id"], 0])).content.decode()
    assert 'id="countdown"' not in page
