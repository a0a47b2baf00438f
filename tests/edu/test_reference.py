"""Experts as reference readers: their readings stay out of trainees' results, and their
answers can be the key of questions without a built-in ground truth."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from edu import answering, keys
from edu.models import Answer, Attempt, Question, Quiz
from tests.edu.conftest import build_quiz, perfect_responses
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# The reference readers' free-text answers: two agree once case and punctuation are ignored.
READINGS = ["Oligodendroglioma, calcified.", "oligodendroglioma calcified", "Abscess"]
MAJORITY = "oligodendroglioma calcified"


def _post(client, url, payload):
    return client.post(url, payload, content_type="application/json")


def _question(state, kind):
    return next(q for q in state["items"][0]["questions"] if q["kind"] == kind)


def _use_reference(client, quiz, kind):
    question = quiz.items.get().questions.get(kind=kind)
    reply = client.post(
        reverse("edu:question-key-source", args=[question.pk]), {"key_source": "reference"}
    )
    assert reply.status_code == 302, reply.content
    question.refresh_from_db()
    assert question.uses_reference
    return question


def _read(client, quiz, *, text, severity):
    """One expert's reference reading through the API: free text and severity answered."""
    state = client.post(f"/edu/api/quizzes/{quiz.pk}/reference/").json()
    assert state["is_reference"] is True
    url = f"/edu/api/attempts/{state['id']}/answers/"
    for kind, response in (("free_text", {"text": text}), ("severity", {"value": severity})):
        reply = _post(client, url, {"question": _question(state, kind)["id"], "response": response})
        assert reply.status_code == 201, reply.content
        body = reply.content.decode()
        assert '"score"' not in body  # no key before finishing
        assert "feedback" not in body
    return state


def _severity_answer(client, quiz, question, value):
    """The signed-in trainee starts an attempt and estimates the severity: their Answer."""
    state = client.post(f"/edu/api/quizzes/{quiz.pk}/start/").json()
    url = f"/edu/api/attempts/{state['id']}/answers/"
    _post(client, url, {"question": question.pk, "response": {"value": value}})
    return Answer.objects.get(attempt_id=state["id"], question=question)


def test_reference_answers_become_the_key_of_questions_without_ground_truth(
    client, login, educator, trainee, other_trainee, cohort, quiz
):
    other_trainee.groups.add(cohort)
    educator_client = login(educator)
    free_text = _use_reference(educator_client, quiz, "free_text")
    severity_question = _use_reference(educator_client, quiz, "severity")
    truth = keys.max_severity(quiz.items.get())
    reference_value = truth - 0.45 if truth > 0.5 else truth + 0.45

    # A trainee who answers before any reference reading waits for the reference standard.
    client.logout()
    early = login(other_trainee)
    state = early.post(f"/edu/api/quizzes/{quiz.pk}/start/").json()
    reply = _post(
        early,
        f"/edu/api/attempts/{state['id']}/answers/",
        {"question": free_text.pk, "response": {"text": "oligodendroglioma; calcified!"}},
    )
    assert _question(reply.json(), "free_text")["score"] is None

    for text, delta in zip(READINGS, (0.0, 0.02, 0.3), strict=True):
        client.logout()
        _read(login(UserFactory(role="expert")), quiz, text=text, severity=reference_value + delta)
    early_answer = Answer.objects.get(attempt_id=state["id"], question=free_text)
    assert early_answer.score == 1.0  # scored again once the readers had answered

    # A trainee sees neither the reference answers nor the key before answering ...
    client.logout()
    client = login(trainee)
    state = client.post(f"/edu/api/quizzes/{quiz.pk}/start/").json()
    page = client.get(reverse("edu:attempt-item", args=[state["id"], 0])).content.decode()
    for body in (json.dumps(state), page):
        assert "oligodendroglioma" not in body.lower()
        assert "reference_answer" not in body
        assert "reference_value" not in body
    # ... is scored against the majority / median, and sees it with the feedback.
    url = f"/edu/api/attempts/{state['id']}/answers/"
    _post(
        client,
        url,
        {"question": free_text.pk, "response": {"text": "OLIGODENDROGLIOMA, calcified"}},
    )
    reply = _post(
        client,
        url,
        {"question": severity_question.pk, "response": {"value": reference_value + 0.05}},
    )
    answered = {q["kind"]: q for q in reply.json()["items"][0]["questions"]}
    assert answered["free_text"]["score"] == 1.0
    assert answered["free_text"]["feedback"]["reference_answer"] == MAJORITY
    assert answered["severity"]["score"] == 1.0  # 0.45 from the truth, within 0.1 of the median
    assert answered["severity"]["feedback"]["reference_value"] == pytest.approx(
        reference_value + 0.02
    )
    page = client.get(reverse("edu:attempt-item", args=[state["id"], 0])).content.decode()
    assert f"Reference readers' answer: <q>{MAJORITY}</q>" in page


def test_a_wrong_free_text_answer_scores_nothing_and_no_majority_leaves_it_to_the_educator(
    client, login, educator, trainee, quiz
):
    free_text = _use_reference(login(educator), quiz, "free_text")
    for text in ("glioma", "abscess"):  # no majority
        client.logout()
        _read(login(UserFactory(role="expert")), quiz, text=text, severity=0.5)
    client.logout()
    client = login(trainee)
    state = client.post(f"/edu/api/quizzes/{quiz.pk}/start/").json()
    url = f"/edu/api/attempts/{state['id']}/answers/"
    reply = _post(client, url, {"question": free_text.pk, "response": {"text": "glioma"}})
    assert _question(reply.json(), "free_text")["score"] is None
    client.logout()
    _read(login(UserFactory(role="expert")), quiz, text="Abscess.", severity=0.5)
    assert Answer.objects.get(attempt_id=state["id"], question=free_text).score == 0.0


def test_reference_readings_stay_out_of_trainee_results(client, login, educator, trainee, quiz):
    expert = UserFactory(role="expert")
    expert_client = login(expert)
    state = _read(expert_client, quiz, text="glioma", severity=0.5)
    attempt = Attempt.objects.get(pk=state["id"])
    for question, response in perfect_responses(attempt, attempt.items()[0]).items():
        if question.kind not in ("free_text", "severity"):
            _post(
                expert_client,
                f"/edu/api/attempts/{state['id']}/answers/",
                {"question": question.pk, "response": response},
            )
    assert expert_client.post(f"/edu/api/quizzes/{quiz.pk}/reference/").json()["id"] == state["id"]
    finished = expert_client.post(f"/edu/api/attempts/{state['id']}/finish/").json()
    assert "feedback" in _question(finished, "single_best")  # the key, once finished
    summary = expert_client.get(reverse("edu:attempt-summary", args=[state["id"]])).content
    assert b"Retry wrong items" not in summary
    assert expert_client.post(reverse("edu:attempt-retry", args=[state["id"]])).status_code == 400

    client.logout()
    client = login(trainee)
    trainee_attempt = Attempt.start(quiz=quiz, user=trainee)
    trainee_attempt.finish()
    client.logout()
    client = login(educator)
    page = client.get(reverse("edu:quiz-results", args=[quiz.pk])).content.decode()
    assert "1 trainee finished" in page
    assert 'class="reference-answers"' in page
    assert f"<strong>{expert.username}</strong>: glioma" in page
    assert f"<strong>{expert.username}</strong>: Glioma" in page  # the single best option
    trainees_table = page.split('class="trainees"')[1].split("</table>")[0]
    assert expert.username not in trainees_table
    csv_text = client.get(reverse("edu:quiz-results-csv", args=[quiz.pk])).content.decode()
    assert expert.username not in csv_text
    assert len(csv_text.splitlines()) == 2
    client.logout()
    dashboard = login(expert).get(reverse("edu:dashboard")).content.decode()
    assert "Finish a quiz to see your progress here." in dashboard


def test_who_may_read_what(client, login, educator, trainee, cohort, case, quiz):
    draft = build_quiz(educator, cohort, case, publish=False)
    expert = login(UserFactory(role="expert"))
    assert expert.post(f"/edu/api/quizzes/{draft.pk}/reference/").status_code == 404
    page = expert.get(reverse("edu:quiz-list")).content.decode()
    assert f'data-reference-quiz="{quiz.pk}"' in page
    assert f'data-reference-quiz="{draft.pk}"' not in page
    Quiz.objects.filter(pk=draft.pk).update(invite_reference_readers=True)
    reply = expert.post(reverse("edu:reference-start", args=[draft.pk]))
    reading = Attempt.objects.get(quiz=draft, is_reference=True)
    assert reply.url == reverse("edu:attempt-item", args=[reading.pk, 0])
    page = expert.get(reply.url).content.decode()
    assert "reference reading" in page
    client.logout()
    trainee_client = login(trainee)
    assert trainee_client.post(f"/edu/api/quizzes/{quiz.pk}/reference/").status_code == 403
    assert trainee_client.get(f"/edu/api/attempts/{reading.pk}/").status_code == 404


def test_only_free_text_and_severity_take_a_reference_standard(login, educator, quiz):
    client = login(educator)
    question = quiz.items.get().questions.get(kind="single_best")
    reply = client.post(
        reverse("edu:question-key-source", args=[question.pk]), {"key_source": "reference"}
    )
    assert reply.status_code == 400
    assert b"only free text and severity" in reply.content
    question.refresh_from_db()
    assert not question.uses_reference


def test_going_back_to_the_built_in_key_scores_again(login, client, educator, trainee, quiz):
    educator_client = login(educator)
    severity = _use_reference(educator_client, quiz, "severity")
    truth = keys.max_severity(quiz.items.get())
    client.logout()
    _read(login(UserFactory(role="expert")), quiz, text="glioma", severity=truth + 0.5)
    client.logout()
    trainee_client = login(trainee)
    answer = _severity_answer(trainee_client, quiz, severity, truth)
    assert answer.score == 0.0  # half a point away from the reference median
    client.logout()
    educator_client = login(educator)
    educator_client.post(
        reverse("edu:question-key-source", args=[severity.pk]), {"key_source": "built_in"}
    )
    answer.refresh_from_db()
    assert answer.score == 1.0


def test_rescoring_looks_the_reference_standard_up_once_however_many_answers(quiz):
    question = quiz.items.get().questions.get(kind=Question.Kind.SEVERITY)
    question.key_source = Question.KeySource.REFERENCE
    question.save()
    reading = Attempt.start_reference(quiz=quiz, user=UserFactory(role="expert"))
    answering.submit(reading, question, {"value": 0.4})
    queries = []
    for values in ([0.45, 0.9], [0.45, 0.9, 0.35, 0.8, 0.0, 0.41]):
        for value in values:
            attempt = Attempt.start(quiz=quiz, user=UserFactory(role="trainee"))
            answering.submit(attempt, question, {"value": value})
        with CaptureQueriesContext(connection) as captured:
            assert (
                answering.rescore(question)
                == Answer.objects.filter(question=question, attempt__is_reference=False).count()
            )
        queries.append(len(captured))
    assert queries[0] == queries[1]  # not one more lookup or update per answer
    scores = Answer.objects.filter(question=question, attempt__is_reference=False)
    assert sorted(a.score for a in scores) == [0.0] * 4 + [1.0] * 4  # within 0.1 of 0.4
    assert {a.detail["reference"] for a in scores} == {0.4}


def test_the_api_switches_a_questions_key_source_and_scores_its_answers_again(
    login, client, educator, trainee, quiz
):
    severity = quiz.items.get().questions.get(kind=Question.Kind.SEVERITY)
    truth = keys.max_severity(quiz.items.get())
    _read(login(UserFactory(role="expert")), quiz, text="glioma", severity=truth + 0.5)
    client.logout()
    trainee_client = login(trainee)
    answer = _severity_answer(trainee_client, quiz, severity, truth)
    assert answer.score == 1.0  # the built-in key
    url = f"/edu/api/questions/{severity.pk}/key-source/"
    assert _post(trainee_client, url, {"key_source": "reference"}).status_code == 403
    client.logout()
    educator_client = login(educator)
    reply = _post(educator_client, url, {"key_source": "reference"})
    assert reply.status_code == 200, reply.content
    assert reply.json()["key_source"] == "reference"
    assert reply.json()["answers_scored_again"] == 1
    answer.refresh_from_db()
    assert answer.score == 0.0  # half a point from the reference median

    single_best = quiz.items.get().questions.get(kind=Question.Kind.SINGLE_BEST)
    reply = _post(
        educator_client,
        f"/edu/api/questions/{single_best.pk}/key-source/",
        {"key_source": "reference"},
    )
    assert reply.status_code == 400
    assert "only free text and severity" in str(reply.json())
    reply = _post(educator_client, url, {"key_source": "crowd"})
    assert reply.status_code == 400
    assert "crowd" in str(reply.json())
    severity.refresh_from_db()
    assert severity.uses_reference
