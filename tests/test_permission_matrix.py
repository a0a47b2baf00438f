"""Role x object x action, over pages and the API: one permission layer decides them all.

One world: a template and a published quiz owned by one educator with one co-author, a
trainee's attempt at the quiz, and an open Turing study read by one expert. Every role in
``ROLES`` tries every action in ``MATRIX``; a page sends anonymous users to the login page
(302), the API answers them 403. Others' attempts answer 404, as if they did not exist, and so
do a study's images to whoever is neither its rater nor runs studies.
"""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from edu.models import Answer, Attempt, ConceptCard, Question
from tests.cases.test_api import _payload
from tests.edu.conftest import build_quiz
from tests.factories import CaseTemplateFactory, TemplateVersionFactory, UserFactory
from tests.turing.factories import make_reference_images
from turing.building import StudyPlan, build_study

pytestmark = pytest.mark.django_db

ROLES = (
    "anonymous",
    "trainee",  # the attempt's own trainee, in the quiz's cohort
    "other_trainee",  # in the same cohort
    "expert",  # not a rater of the study
    "rater",  # an expert who rates the study
    "owner",  # the educator who owns the template and the quiz
    "co_author",  # an educator, co-author of both
    "educator",  # another educator
)


def allowed(*roles, yes=200, no=403, anonymous=302):
    """Expected status per role: ``yes`` for ``roles``, ``no`` for the others."""
    return {
        role: anonymous if role == "anonymous" else (yes if role in roles else no) for role in ROLES
    }


EDUCATORS = ("owner", "co_author", "educator")
AUTHORS = ("owner", "co_author")
STAFF = ("expert", "rater", *EDUCATORS)

# (object, action, method, url(world), body, expected per role)
MATRIX = [
    # --- a case template: every educator and expert reads it; its authors edit it
    (
        "template",
        "read page",
        "get",
        lambda w: f"/templates/{w.template.pk}/",
        None,
        allowed(*STAFF),
    ),
    (
        "template",
        "edit page",
        "get",
        lambda w: f"/templates/{w.template.pk}/edit/",
        None,
        allowed(*AUTHORS),
    ),
    (
        "template",
        "save page",
        "post",
        lambda w: f"/templates/{w.template.pk}/edit/",
        {"title": ""},
        allowed(*AUTHORS, yes=400),
    ),
    (
        "template",
        "read API",
        "get",
        lambda w: f"/api/templates/{w.template.pk}/",
        None,
        allowed(*STAFF, anonymous=403),
    ),
    (
        "template",
        "edit API",
        "put",
        lambda w: f"/api/templates/{w.template.pk}/",
        lambda w: _payload(w.generator),
        allowed(*AUTHORS, anonymous=403),
    ),
    (
        "template",
        "co-authors API",
        "put",
        lambda w: f"/api/templates/{w.template.pk}/co-authors/",
        lambda w: {"co_authors": [w.users["co_author"].pk]},
        allowed(*AUTHORS, anonymous=403),
    ),
    # --- a quiz: its authors edit it, read its results and grade; its cohort takes it
    (
        "quiz",
        "edit page",
        "get",
        lambda w: reverse("edu:quiz-edit", args=[w.quiz.pk]),
        None,
        allowed(*AUTHORS),
    ),
    (
        "quiz",
        "save page",
        "post",
        lambda w: reverse("edu:quiz-edit", args=[w.quiz.pk]),
        {"title": ""},
        allowed(*AUTHORS, yes=400),
    ),
    (
        "quiz",
        "results page",
        "get",
        lambda w: reverse("edu:quiz-results", args=[w.quiz.pk]),
        None,
        allowed(*AUTHORS),
    ),
    (
        "quiz",
        "grade page",
        "post",
        lambda w: reverse("edu:grade-answer", args=[w.answer.pk]),
        {"score": "x"},
        allowed(*AUTHORS, yes=400),
    ),
    (
        "quiz",
        "read API",
        "get",
        lambda w: f"/edu/api/quizzes/{w.quiz.pk}/",
        None,
        # trainees of the cohort read it without its keys; experts are not in the cohort
        {
            **allowed(*AUTHORS, "trainee", "other_trainee", anonymous=403),
            "expert": 404,
            "rater": 404,
        },
    ),
    (
        "quiz",
        "edit API",
        "patch",
        lambda w: f"/edu/api/quizzes/{w.quiz.pk}/",
        {"description": "edited"},
        allowed(*AUTHORS, anonymous=403),
    ),
    (
        "quiz",
        "grade API",
        "post",
        lambda w: f"/edu/api/answers/{w.answer.pk}/grade/",
        {"score": 1},
        allowed(*AUTHORS, anonymous=403),
    ),
    # --- an attempt: its trainee alone; to anyone else it does not exist
    (
        "attempt",
        "read page",
        "get",
        lambda w: reverse("edu:attempt-summary", args=[w.attempt.pk]),
        None,
        allowed("trainee", no=404),
    ),
    (
        "attempt",
        "read API",
        "get",
        lambda w: f"/edu/api/attempts/{w.attempt.pk}/",
        None,
        allowed("trainee", no=404, anonymous=403),
    ),
    # --- spaced practice: trainees, each on their own cards; educators set the dial
    (
        "practice",
        "read page",
        "get",
        lambda w: reverse("edu:practice"),
        None,
        allowed("trainee", "other_trainee"),
    ),
    (
        "concept card",
        "read page",
        "get",
        lambda w: reverse("edu:practice-card", args=[w.card.pk]),
        None,
        {**allowed("trainee"), "other_trainee": 404},
    ),
    (
        "template",
        "set practice difficulty",
        "post",
        lambda w: reverse("edu:difficulty-dial", args=[w.template.pk]),
        {"levels": "0"},
        allowed(*EDUCATORS, yes=400),
    ),
    # --- a Turing study: educators run it; its rater reads its blinded images
    (
        "study",
        "manage page",
        "get",
        lambda w: f"/turing/studies/{w.study.pk}/",
        None,
        allowed(*EDUCATORS),
    ),
    (
        "study",
        "image",
        "get",
        lambda w: w.study.images.first().get_absolute_url(),
        None,
        allowed("rater", *EDUCATORS, no=404),
    ),
    (
        "study",
        "start reading",
        "get",
        lambda w: f"/turing/studies/{w.study.pk}/start/",
        None,
        allowed("rater", no=404),
    ),
    # While the study is open nobody sees its results.
    (
        "study",
        "results",
        "get",
        lambda w: f"/turing/studies/{w.study.pk}/results/",
        None,
        allowed(),
    ),
    # --- a generator: only those who may register generators (no role) import or publish;
    # educators teach directions, to unconditional imported generators only
    ("generator", "import page", "get", lambda w: "/generators/import/", None, allowed()),
    (
        "generator",
        "publish",
        "post",
        lambda w: f"/generators/{w.generator.pk}/publish/",
        None,
        allowed(),
    ),
    (
        "generator",
        "teach a direction",
        "get",
        lambda w: f"/generators/{w.generator.pk}/directions/",
        None,
        allowed(*EDUCATORS, yes=404),
    ),
]


class World:
    def __init__(self, make_cases, generator_model, educator, trainee, other_trainee):
        cohort = Group.objects.create(name="cohort-matrix")
        trainee.groups.add(cohort)
        other_trainee.groups.add(cohort)
        self.users = {
            "trainee": trainee,
            "other_trainee": other_trainee,
            "expert": UserFactory(role="expert"),
            "rater": UserFactory(role="expert"),
            "owner": educator,
            "co_author": UserFactory(role="educator"),
            "educator": UserFactory(role="educator"),
        }
        self.generator = generator_model
        self.template = CaseTemplateFactory(created_by=educator)
        TemplateVersionFactory(template=self.template, generator=generator_model)
        self.template.co_authors.add(self.users["co_author"])
        (case,) = make_cases(1)
        self.quiz = build_quiz(educator, cohort, case)
        self.quiz.co_authors.add(self.users["co_author"])
        self.attempt = Attempt.start(quiz=self.quiz, user=trainee)
        self.card = ConceptCard.open(trainee=trainee, template=case.template_version.template)
        free_text = Question.objects.get(item__quiz=self.quiz, kind=Question.Kind.FREE_TEXT)
        self.answer = Answer.objects.create(
            attempt=self.attempt, question=free_text, response={"text": "A mass."}
        )
        pool = make_reference_images_pool(educator)
        plan = StudyPlan(
            title="Matrix study",
            pool=pool,
            n_images=4,
            synthetic_ratio=0.5,
            raters=[self.users["rater"]],
            generator=generator_model,
            seed=3,
        )
        self.study = build_study(plan, created_by=educator)


def make_reference_images_pool(owner):
    from cases.models import ReferencePool

    pool = ReferencePool.objects.create(name="matrix pool", created_by=owner)
    make_reference_images(pool, 4)
    return pool


def test_role_object_action_matrix(
    client, make_cases, generator_model, educator, trainee, other_trainee
):
    world = World(make_cases, generator_model, educator, trainee, other_trainee)
    misses = []
    for obj, action, method, url, body, expected in MATRIX:
        for role in ROLES:
            client.logout()
            if role != "anonymous":
                client.force_login(world.users[role])
            data = body(world) if callable(body) else body
            kwargs = {"content_type": "application/json"} if "/api/" in url(world) else {}
            response = getattr(client, method)(url(world), data, **kwargs)
            if response.status_code != expected[role]:
                misses.append(f"{role} {obj} {action}: {response.status_code} != {expected[role]}")
            elif response.status_code == 302 and "/accounts/login/" not in response.url:
                misses.append(f"{role} {obj} {action}: redirected to {response.url}")
    assert misses == [], "\n".join(misses)


def test_a_co_author_added_through_the_api_may_then_edit(client, generator_model, educator):
    template = CaseTemplateFactory(created_by=educator)
    TemplateVersionFactory(template=template, generator=generator_model)
    colleague = UserFactory(role="educator")
    client.force_login(colleague)
    edit = lambda: client.put(  # noqa: E731
        f"/api/templates/{template.pk}/", _payload(generator_model), content_type="application/json"
    )
    assert edit().status_code == 403
    client.force_login(educator)
    added = client.put(
        f"/api/templates/{template.pk}/co-authors/",
        {"co_authors": [colleague.pk]},
        content_type="application/json",
    )
    assert added.status_code == 200
    assert added.json()["co_authors"] == [colleague.pk]
    client.force_login(colleague)
    assert edit().status_code == 200
    assert template.versions.count() == 2


def test_only_educators_can_be_co_authors(client, generator_model, educator, trainee):
    template = CaseTemplateFactory(created_by=educator)
    TemplateVersionFactory(template=template, generator=generator_model)
    client.force_login(educator)
    response = client.put(
        f"/api/templates/{template.pk}/co-authors/",
        {"co_authors": [trainee.pk]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "co_authors" in response.json()
    assert not template.co_authors.exists()
