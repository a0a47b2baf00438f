"""The API never hands a trainee a key, another trainee's answers or an unpublished quiz."""

import json

import pytest

from edu.models import Answer, Attempt, Quiz
from tests.edu.conftest import OPTIONS, build_quiz, perfect_responses

pytestmark = pytest.mark.django_db

# Strings and names that only a key carries.
KEY_MARKERS = (
    "correct",
    "feedback",
    "Infiltrative",
    "true_order",
    "true_value",
    "tolerance",
    '"tau"',
    '"hit"',
    "diagnosis",
    "explanation",
    "history",
    "Glioma growth",
)


def _start(client, quiz):
    response = client.post(f"/edu/api/quizzes/{quiz.pk}/start/")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_trainee_reads_no_key_before_answering(login, trainee, quiz):
    client = login(trainee)
    quiz_body = client.get(f"/edu/api/quizzes/{quiz.pk}/").content.decode()
    state = _start(client, quiz)
    body = json.dumps(state) + quiz_body
    for marker in KEY_MARKERS:
        assert marker not in body, marker
    question = next(q for q in state["items"][0]["questions"] if q["kind"] == "single_best")
    assert question["options"] == [o["text"] for o in OPTIONS]
    assert state["items"][0]["case"] == {}  # unknown-case mode: not even the history
    # Nor through the case API or page: the case is not revealed yet.
    case_pk = quiz.items.get().case_id
    assert client.get(f"/api/cases/{case_pk}/").status_code == 404
    assert client.get(f"/cases/{case_pk}/").status_code == 404


def test_practice_feedback_comes_with_the_answer(login, trainee, quiz):
    client = login(trainee)
    state = _start(client, quiz)
    question = next(q for q in state["items"][0]["questions"] if q["kind"] == "single_best")
    response = client.post(
        f"/edu/api/attempts/{state['id']}/answers/",
        {"question": question["id"], "response": {"option": 2}},
        content_type="application/json",
    )
    assert response.status_code == 201
    answered = next(
        q for q in response.json()["items"][0]["questions"] if q["id"] == question["id"]
    )
    assert answered["score"] == 0.0
    assert answered["feedback"]["correct_option"] == 0
    assert answered["feedback"]["option_feedback"][2] == "Follows a vascular territory."
    # The other questions of the item stay without keys.
    others = [q for q in response.json()["items"][0]["questions"] if q["id"] != question["id"]]
    assert all("feedback" not in q and "score" not in q for q in others)


def test_a_repeated_submit_does_not_double_count(login, trainee, quiz):
    client = login(trainee)
    state = _start(client, quiz)
    question = state["items"][0]["questions"][0]["id"]
    url = f"/edu/api/attempts/{state['id']}/answers/"
    payload = {"question": question, "response": {"option": 0}}
    codes = [
        client.post(url, payload, content_type="application/json").status_code for _ in range(3)
    ]
    assert codes == [201, 200, 200]
    assert Answer.objects.filter(attempt_id=state["id"]).count() == 1
    assert client.get(f"/edu/api/attempts/{state['id']}/").json()["score"]["earned"] == 1.0


def test_exam_keys_stay_hidden_until_the_end(login, trainee, educator, cohort, case):
    quiz = build_quiz(educator, cohort, case, mode=Quiz.Mode.EXAM)
    client = login(trainee)
    state = _start(client, quiz)
    attempt = Attempt.objects.get(pk=state["id"])
    item = attempt.items()[0]
    url = f"/edu/api/attempts/{state['id']}/answers/"
    for question, response in perfect_responses(attempt, item).items():
        reply = client.post(
            url, {"question": question.pk, "response": response}, content_type="application/json"
        )
        assert reply.status_code == 201
        body = reply.content.decode()
        assert "feedback" not in body
        assert '"score"' not in body
    finished = client.post(f"/edu/api/attempts/{state['id']}/finish/").json()
    assert finished["score"]["percent"] == 100.0
    assert all("feedback" in q for q in finished["items"][0]["questions"])
    assert finished["items"][0]["case"]["diagnosis"] == "Glioma"


def test_a_trainee_cannot_read_another_trainees_attempt(
    login, client, trainee, other_trainee, cohort, quiz
):
    other_trainee.groups.add(cohort)
    state = _start(login(other_trainee), quiz)
    client.logout()
    client = login(trainee)
    assert client.get(f"/edu/api/attempts/{state['id']}/").status_code == 404
    question = state["items"][0]["questions"][0]["id"]
    reply = client.post(
        f"/edu/api/attempts/{state['id']}/answers/",
        {"question": question, "response": {"option": 0}},
        content_type="application/json",
    )
    assert reply.status_code == 404
    assert client.get("/edu/api/attempts/").json() == []
    image = state["items"][0]["images"][0]
    assert client.get(image).status_code == 404


def test_unpublished_and_other_cohorts_quizzes_are_invisible(
    login, trainee, educator, cohort, case
):
    draft = build_quiz(educator, cohort, case, publish=False)
    client = login(trainee)
    assert client.get("/edu/api/quizzes/").json()["results"] == []
    assert client.get(f"/edu/api/quizzes/{draft.pk}/").status_code == 404
    assert client.post(f"/edu/api/quizzes/{draft.pk}/start/").status_code == 404
    draft.publish()
    assert [q["id"] for q in client.get("/edu/api/quizzes/").json()["results"]] == [draft.pk]
    trainee.groups.remove(cohort)
    assert client.get("/edu/api/quizzes/").json()["results"] == []


def test_no_case_enters_a_published_quiz(login, educator, quiz, make_cases):
    draft = make_cases(1, status="in_review")[0]
    client = login(educator)
    reply = client.post(f"/edu/api/quizzes/{quiz.pk}/items/", {"case": draft.pk, "order": 1})
    assert reply.status_code == 400
    assert "frozen" in reply.content.decode()
    assert quiz.items.count() == 1


def test_bad_responses_are_400_and_store_nothing(login, trainee, quiz):
    client = login(trainee)
    state = _start(client, quiz)
    url = f"/edu/api/attempts/{state['id']}/answers/"
    by_kind = {q["kind"]: q["id"] for q in state["items"][0]["questions"]}
    for kind, response in [
        ("single_best", {"option": 9}),
        ("staging", {"order": [0, 0, 1]}),
        ("localisation", {"image": 0}),
        ("severity", {"value": "high"}),
        ("free_text", {"text": ""}),
        ("single_best", "not an object"),
    ]:
        reply = client.post(
            url, {"question": by_kind[kind], "response": response}, content_type="application/json"
        )
        assert reply.status_code == 400, (kind, reply.content)
    assert (
        client.post(
            url, {"question": 10**6, "response": {}}, content_type="application/json"
        ).status_code
        == 400
    )
    assert not Answer.objects.exists()


def test_an_expert_review_through_the_api_approves_a_case(client, make_cases):
    from tests.factories import UserFactory

    case = make_cases(1, status="draft")[0]
    for realism in (4, 5):
        client.force_login(UserFactory(role="expert"))
        reply = client.post(
            "/edu/api/reviews/",
            {"case": case.pk, "realism": realism, "shows_finding": "yes", "teaching_value": 4},
        )
        assert reply.status_code == 201
    assert reply.json()["case_status"] == "approved"
    reply = client.post(
        "/edu/api/reviews/",
        {"case": case.pk, "realism": 0, "shows_finding": "yes", "teaching_value": 4},
    )
    assert reply.status_code == 400


def test_a_refused_quiz_edit_changes_nothing(login, educator, quiz):
    client = login(educator)
    before = {"title": quiz.title, "opens_at": quiz.opens_at, "closes_at": quiz.closes_at}
    reply = client.patch(
        f"/edu/api/quizzes/{quiz.pk}/",
        {
            "title": "Renamed",
            "opens_at": "2030-01-02T00:00:00Z",
            "closes_at": "2030-01-01T00:00:00Z",
        },
        content_type="application/json",
    )
    assert reply.status_code == 400
    assert "close after it opens" in reply.content.decode()
    quiz.refresh_from_db()
    assert {"title": quiz.title, "opens_at": quiz.opens_at, "closes_at": quiz.closes_at} == before


def test_a_quiz_created_through_the_api_is_validated_too(login, educator):
    reply = login(educator).post(
        "/edu/api/quizzes/",
        {"title": "Backwards", "opens_at": "2030-01-02T00:00Z", "closes_at": "2030-01-01T00:00Z"},
        content_type="application/json",
    )
    assert reply.status_code == 400
    assert not Quiz.objects.filter(title="Backwards").exists()


@pytest.mark.parametrize("depth", [50_000, 33])
def test_an_answer_nested_too_deep_is_refused_with_a_reason(login, trainee, quiz, depth):
    client = login(trainee)
    state = _start(client, quiz)
    question = state["items"][0]["questions"][0]["id"]
    nested = "[" * depth + "]" * depth
    reply = client.post(
        f"/edu/api/attempts/{state['id']}/answers/",
        f'{{"question": {question}, "response": {{"option": 0, "more": {nested}}}}}',
        content_type="application/json",
    )
    assert reply.status_code == 400
    assert "nested deeper than 32 levels" in reply.json()["detail"]
    assert not Answer.objects.exists()
