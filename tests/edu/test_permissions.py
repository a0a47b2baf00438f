"""Every edu page and endpoint against every role."""

import pytest
from django.urls import reverse

from edu.models import Attempt
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "trainee", "expert", "educator")


@pytest.fixture
def world(quiz, trainee, case, educator):
    attempt = Attempt.start(quiz=quiz, user=trainee)
    return {
        "owner": educator,
        "quiz": quiz.pk,
        "case": case.pk,
        "attempt": attempt.pk,
        "template": case.template_version.template_id,
        "item": attempt.item_ids[0],
        "question": quiz.items.get().questions.get(kind="free_text").pk,
    }


# (method, url, expected per role: anonymous, trainee (not the attempt's owner), expert,
# educator (the quiz's owner; other educators: tests/test_permission_matrix.py)). Pages send
# anonymous users to the login page; the API answers them 403.
MATRIX = [
    ("get", lambda w: reverse("edu:review-queue"), (302, 403, 200, 403)),
    ("get", lambda w: reverse("edu:review-case", args=[w["case"]]), (302, 403, 200, 403)),
    ("get", lambda w: reverse("edu:curation"), (302, 403, 403, 200)),
    ("post", lambda w: reverse("edu:curation-rule", args=[w["template"]]), (302, 403, 403, 400)),
    ("post", lambda w: reverse("edu:case-approve", args=[w["case"]]), (302, 403, 403, 302)),
    ("get", lambda w: reverse("edu:quiz-list"), (302, 200, 200, 200)),
    ("get", lambda w: reverse("edu:quiz-create"), (302, 403, 403, 200)),
    ("get", lambda w: reverse("edu:quiz-edit", args=[w["quiz"]]), (302, 403, 403, 200)),
    ("post", lambda w: reverse("edu:quiz-add-items", args=[w["quiz"]]), (302, 403, 403, 400)),
    ("post", lambda w: reverse("edu:quiz-publish", args=[w["quiz"]]), (302, 403, 403, 302)),
    ("post", lambda w: reverse("edu:quiz-new-version", args=[w["quiz"]]), (302, 403, 403, 302)),
    # The world's quiz is published: its items are fixed (400 for the educator).
    (
        "post",
        lambda w: reverse("edu:quiz-item-move", args=[w["quiz"], w["item"]]),
        (302, 403, 403, 400),
    ),
    (
        "post",
        lambda w: reverse("edu:quiz-item-remove", args=[w["quiz"], w["item"]]),
        (302, 403, 403, 400),
    ),
    ("post", lambda w: reverse("edu:reference-start", args=[w["quiz"]]), (302, 403, 302, 403)),
    (
        "post",
        lambda w: reverse("edu:question-key-source", args=[w["question"]]),
        (302, 403, 403, 400),
    ),
    ("get", lambda w: reverse("edu:quiz-results", args=[w["quiz"]]), (302, 403, 403, 200)),
    ("get", lambda w: reverse("edu:quiz-results-csv", args=[w["quiz"]]), (302, 403, 403, 200)),
    ("post", lambda w: reverse("edu:question-add", args=[w["item"]]), (302, 403, 403, 400)),
    ("get", lambda w: reverse("edu:attempt-item", args=[w["attempt"], 0]), (302, 404, 404, 404)),
    ("get", lambda w: reverse("edu:attempt-summary", args=[w["attempt"]]), (302, 404, 404, 404)),
    (
        "get",
        lambda w: reverse("edu:attempt-image", args=[w["attempt"], w["item"], 0]),
        (302, 404, 404, 404),
    ),
    (
        "get",
        lambda w: reverse("edu:attempt-contrast", args=[w["attempt"], w["item"], 0, 0]),
        (302, 404, 404, 404),
    ),
    ("get", lambda w: reverse("edu:dashboard"), (302, 200, 200, 200)),
    ("get", lambda w: "/edu/api/quizzes/", (403, 200, 200, 200)),
    ("post", lambda w: "/edu/api/quizzes/", (403, 403, 403, 400)),
    ("post", lambda w: f"/edu/api/quizzes/{w['quiz']}/publish/", (403, 403, 403, 200)),
    ("post", lambda w: f"/edu/api/quizzes/{w['quiz']}/reference/", (403, 403, 201, 403)),
    ("get", lambda w: f"/edu/api/attempts/{w['attempt']}/", (403, 404, 404, 404)),
    ("get", lambda w: "/edu/api/reviews/", (403, 403, 200, 403)),
    ("post", lambda w: "/edu/api/questions/", (403, 403, 403, 400)),
    (
        "post",
        lambda w: f"/edu/api/questions/{w['question']}/key-source/",
        (403, 403, 403, 400),
    ),
    (
        "post",
        lambda w: f"/edu/api/quizzes/{w['quiz']}/items/{w['item']}/move/",
        (403, 403, 403, 400),
    ),
    (
        "delete",
        lambda w: f"/edu/api/quizzes/{w['quiz']}/items/{w['item']}/",
        (403, 403, 403, 400),
    ),
]


def test_role_matrix(client, world):
    """One world for the whole matrix (building it generates a case); every miss reported."""
    misses = []
    for method, url, expected in MATRIX:
        for role, status in zip(ROLES, expected, strict=True):
            client.logout()
            if role == "educator":
                client.force_login(world["owner"])
            elif role != "anonymous":
                client.force_login(UserFactory(role=role))
            response = getattr(client, method)(url(world))
            if response.status_code != status:
                misses.append(f"{role} {method} {url(world)}: {response.status_code} != {status}")
            elif role == "anonymous" and status == 302 and "/login/" not in response.url:
                misses.append(f"anonymous {method} {url(world)} not sent to the login page")
    assert misses == []
