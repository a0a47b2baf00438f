"""Educators order and remove the items of a draft quiz from its edit page; a published
quiz's items are fixed."""

import re

import pytest
from django.urls import reverse

from edu.models import Question, QuizItem
from tests.edu.conftest import build_quiz

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(educator, cohort, make_cases):
    """A draft quiz of three items, a, b and c, added through the page."""
    a, b, c = make_cases(3)
    quiz = build_quiz(educator, cohort, a, publish=False)
    return quiz, [a, b, c]


def _add(client, quiz, cases):
    reply = client.post(reverse("edu:quiz-add-items", args=[quiz.pk]), {"cases": cases})
    assert reply.status_code == 302


def _cases_in_order(quiz):
    return list(quiz.items.order_by("order").values_list("case_id", flat=True))


def _move(client, quiz, case, **data):
    item = quiz.items.get(case=case)
    return client.post(reverse("edu:quiz-item-move", args=[quiz.pk, item.pk]), data)


def test_an_educator_reorders_a_draft_quiz(login, educator, draft):
    quiz, (a, b, c) = draft
    client = login(educator)
    _add(client, quiz, [b.pk, c.pk])
    assert _cases_in_order(quiz) == [a.pk, b.pk, c.pk]

    assert _move(client, quiz, c, direction="up").status_code == 302
    assert _cases_in_order(quiz) == [a.pk, c.pk, b.pk]
    _move(client, quiz, a, direction="down")
    assert _cases_in_order(quiz) == [c.pk, a.pk, b.pk]
    _move(client, quiz, c, direction="up")  # already first: stays
    assert _cases_in_order(quiz) == [c.pk, a.pk, b.pk]
    _move(client, quiz, b, position=1)
    assert _cases_in_order(quiz) == [b.pk, c.pk, a.pk]
    _move(client, quiz, b, position=99)  # past the end: last
    assert _cases_in_order(quiz) == [c.pk, a.pk, b.pk]
    assert list(quiz.items.order_by("order").values_list("order", flat=True)) == [0, 1, 2]

    page = client.get(reverse("edu:quiz-edit", args=[quiz.pk])).content.decode()
    shown = [int(pk) for pk in re.findall(r'data-item="(\d+)"', page)]
    assert shown == [quiz.items.get(case=case).pk for case in (c, a, b)]
    assert page.count('class="remove-item"') == 3


def test_an_educator_removes_an_item(login, educator, draft):
    quiz, (a, b, c) = draft
    client = login(educator)
    _add(client, quiz, [b.pk, c.pk])
    first = quiz.items.get(case=a)
    questions = list(first.questions.values_list("pk", flat=True))
    reply = client.post(reverse("edu:quiz-item-remove", args=[quiz.pk, first.pk]))
    assert reply.status_code == 302
    assert _cases_in_order(quiz) == [b.pk, c.pk]
    assert list(quiz.items.order_by("order").values_list("order", flat=True)) == [0, 1]
    assert not Question.objects.filter(pk__in=questions).exists()
    # Added after a removal, a case goes last.
    _add(client, quiz, [a.pk])
    assert _cases_in_order(quiz) == [b.pk, c.pk, a.pk]


def test_bad_moves_are_refused(login, educator, draft, quiz):
    mine, (a, _b, _c) = draft
    client = login(educator)
    assert _move(client, mine, a).status_code == 400  # neither a direction nor a position
    assert _move(client, mine, a, direction="sideways").status_code == 400
    assert _move(client, mine, a, position=0).status_code == 400
    other = quiz.items.get()
    url = reverse("edu:quiz-item-move", args=[mine.pk, other.pk])
    assert client.post(url, {"direction": "up"}).status_code == 404
    url = reverse("edu:quiz-item-remove", args=[mine.pk, other.pk])
    assert client.post(url).status_code == 404
    assert QuizItem.objects.filter(pk=other.pk).exists()


def test_a_published_quizs_items_are_fixed(login, educator, cohort, make_cases):
    first, second = make_cases(2)
    quiz = build_quiz(educator, cohort, first, publish=False)
    client = login(educator)
    _add(client, quiz, [second.pk])
    for question in quiz.items.get(case=first).questions.all():
        question.pk = None
        question.item = quiz.items.get(case=second)
        question.save()
    quiz.publish()
    before = list(quiz.items.order_by("order").values_list("pk", "order"))

    reply = _move(client, quiz, second, direction="up")
    assert reply.status_code == 400
    assert b"the quiz is published: its items can no longer be changed" in reply.content
    item = quiz.items.get(case=first)
    reply = client.post(reverse("edu:quiz-item-remove", args=[quiz.pk, item.pk]))
    assert reply.status_code == 400
    assert b"published" in reply.content
    assert list(quiz.items.order_by("order").values_list("pk", "order")) == before
    assert item.questions.count() == 5
    page = client.get(reverse("edu:quiz-edit", args=[quiz.pk])).content.decode()
    assert "remove-item" not in page
    assert "move-up" not in page


def test_the_api_reorders_and_removes_the_items_of_a_draft_quiz(login, educator, draft):
    quiz, (a, b, c) = draft
    client = login(educator)
    _add(client, quiz, [b.pk, c.pk])

    def url(case, tail=""):
        return f"/edu/api/quizzes/{quiz.pk}/items/{quiz.items.get(case=case).pk}/{tail}"

    reply = client.post(url(c, "move/"), {"position": 1}, content_type="application/json")
    assert reply.status_code == 200, reply.content
    items = sorted(reply.json()["items"], key=lambda item: item["order"])
    assert [item["case"] for item in items] == [c.pk, a.pk, b.pk]
    assert _cases_in_order(quiz) == [c.pk, a.pk, b.pk]
    reply = client.post(url(a, "move/"), {"direction": "down"}, content_type="application/json")
    assert _cases_in_order(quiz) == [c.pk, b.pk, a.pk]

    reply = client.post(url(a, "move/"), {"direction": "sideways"}, content_type="application/json")
    assert reply.status_code == 400
    assert "sideways is not one of the available choices" in reply.json()["direction"][0]
    reply = client.post(url(a, "move/"), {}, content_type="application/json")
    assert reply.json() == {"__all__": ["give a direction (up or down) or a position"]}

    first = quiz.items.get(case=c)
    assert client.delete(url(c)).status_code == 204
    assert _cases_in_order(quiz) == [b.pk, a.pk]
    assert not Question.objects.filter(item_id=first.pk).exists()
    assert client.delete(f"/edu/api/quizzes/{quiz.pk}/items/{first.pk}/").status_code == 404


def test_the_api_keeps_a_published_quizs_items_fixed(login, educator, quiz, trainee):
    item = quiz.items.get()
    client = login(educator)
    url = f"/edu/api/quizzes/{quiz.pk}/items/{item.pk}/"
    reply = client.post(url + "move/", {"position": 1}, content_type="application/json")
    assert reply.status_code == 400
    assert "the quiz is published" in str(reply.json())
    assert client.delete(url).status_code == 400
    assert QuizItem.objects.filter(pk=item.pk).exists()
    client.logout()
    assert login(trainee).delete(url).status_code == 403
    assert QuizItem.objects.filter(pk=item.pk).exists()
