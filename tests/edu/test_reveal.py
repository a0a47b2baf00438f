"""A trainee meets a quiz case in full (case page, API, WADO-URI images) only once every
question of every item that shows it is answered, in every quiz they may still answer."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cases.models import Instance, SyntheticPatient
from edu import answering
from edu.models import Attempt, Quiz
from tests.edu.conftest import build_quiz, perfect_responses

pytestmark = pytest.mark.django_db


def channels(client, case) -> dict[str, int]:
    """What the trainee's browser gets from every door to the case."""
    image, seg = (
        Instance.objects.filter(series__study__patient=case, series__modality=modality).first()
        for modality in ("MR", "SEG")
    )
    listed = client.get("/api/cases/").json()["results"]
    return {
        "api list": len(listed),
        "api": client.get(f"/api/cases/{case.pk}/").status_code,
        "page": client.get(f"/cases/{case.pk}/").status_code,
        "image": client.get(image.wado_uri).status_code,
        "seg": client.get(seg.wado_uri).status_code,
    }


HIDDEN = {"api list": 0, "api": 404, "page": 404, "image": 404, "seg": 404}
SHOWN = {"api list": 1, "api": 200, "page": 200, "image": 200, "seg": 200}


def test_one_wrong_answer_reveals_nothing_of_the_item(login, trainee, quiz, case):
    client = login(trainee)
    attempt = Attempt.start(quiz=quiz, user=trainee)
    item = attempt.items()[0]
    diagnosis = item.questions.get(kind="single_best")
    answering.submit(attempt, diagnosis, {"option": 2})
    assert channels(client, case) == HIDDEN
    for question, response in perfect_responses(attempt, item).items():
        if question != diagnosis:
            answering.submit(attempt, question, response)
    assert channels(client, case) == SHOWN


def test_an_open_quiz_that_has_not_revealed_the_case_keeps_it_hidden(
    login, trainee, educator, cohort, quiz, case
):
    client = login(trainee)
    practice = Attempt.start(quiz=quiz, user=trainee)
    practice.finish()
    assert list(SyntheticPatient.objects.visible_to(trainee)) == [case]
    exam = build_quiz(educator, cohort, case, mode=Quiz.Mode.EXAM)
    assert channels(client, case) == HIDDEN  # the exam is open and holds the case
    attempt = Attempt.start(quiz=exam, user=trainee)
    for question, response in perfect_responses(attempt, attempt.items()[0]).items():
        answering.submit(attempt, question, response)
    assert channels(client, case) == HIDDEN  # an exam shows its keys when finished
    attempt.finish()
    assert channels(client, case) == SHOWN


def test_a_closed_quiz_left_unanswered_does_not_hide_what_another_revealed(
    trainee, educator, cohort, quiz, case
):
    Attempt.start(quiz=quiz, user=trainee).finish()
    closed = build_quiz(educator, cohort, case, mode=Quiz.Mode.EXAM)
    Quiz.objects.filter(pk=closed.pk).update(closes_at=timezone.now() - timedelta(days=1))
    assert list(SyntheticPatient.objects.visible_to(trainee)) == [case]
    # ... unless the trainee still has an unfinished attempt there.
    Quiz.objects.filter(pk=closed.pk).update(closes_at=None)
    Attempt.start(quiz=closed, user=trainee)
    Quiz.objects.filter(pk=closed.pk).update(closes_at=timezone.now() - timedelta(days=1))
    assert not SyntheticPatient.objects.visible_to(trainee).exists()
