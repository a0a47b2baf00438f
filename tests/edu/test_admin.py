"""The admin lists quizzes, attempts, reviews and curation rules; what decides a score is
shown there, not edited, and a review edited there decides its case again."""

import pytest
from django.contrib.auth.models import User

from cases.models import SyntheticPatient
from edu.models import Attempt, CurationRule, Review
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", password="x"))
    return client


def test_quizzes_attempts_reviews_and_rules_have_admin_pages(admin_client, quiz, trainee):
    attempt = Attempt.start(quiz=quiz, user=trainee)
    item = quiz.items.get()
    review = Review.submit(
        case=item.case,
        expert=UserFactory(role="expert"),
        realism=4,
        shows_finding="yes",
        teaching_value=3,
    )
    rule = CurationRule.objects.create(template=item.case.template_version.template)
    for url in (
        "/admin/edu/quiz/",
        f"/admin/edu/quiz/{quiz.pk}/change/",
        f"/admin/edu/quizitem/{item.pk}/change/",
        "/admin/edu/attempt/",
        f"/admin/edu/attempt/{attempt.pk}/change/",
        "/admin/edu/review/",
        f"/admin/edu/review/{review.pk}/change/",
        "/admin/edu/curationrule/",
        f"/admin/edu/curationrule/{rule.pk}/change/",
    ):
        page = admin_client.get(url)
        assert page.status_code == 200, url
    assert quiz.title in admin_client.get("/admin/edu/quiz/").content.decode()
    # Questions and answers are shown read-only: no input carries their fields.
    item_page = admin_client.get(f"/admin/edu/quizitem/{item.pk}/change/").content.decode()
    assert "single_best?" in item_page
    assert 'name="questions-0-prompt"' not in item_page


def test_a_review_edited_in_the_admin_decides_its_case_again(admin_client, make_cases):
    case = make_cases(1, status="draft")[0]
    CurationRule.objects.create(template=case.template_version.template, min_reviews=1)
    review = Review.submit(
        case=case,
        expert=UserFactory(role="expert"),
        realism=5,
        shows_finding="yes",
        teaching_value=4,
    )
    case.refresh_from_db()
    assert case.status == SyntheticPatient.Status.APPROVED
    reply = admin_client.post(
        f"/admin/edu/review/{review.pk}/change/",
        {"realism": 1, "shows_finding": "yes", "teaching_value": 4, "comment": "artefact"},
    )
    assert reply.status_code == 302, reply.content.decode()[-2000:]
    case.refresh_from_db()
    assert case.status == SyntheticPatient.Status.REJECTED
