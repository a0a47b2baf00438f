"""Who may reach what: every page and API endpoint against every role."""

import pytest
from django.urls import reverse

from cases.generation import worker
from cases.models import Operation, SyntheticPatient
from tests.factories import GenerationJobFactory, TemplateVersionFactory, UserFactory

ROLES = ("anonymous", "trainee", "expert", "educator")


@pytest.fixture
def world(generator_model):
    """One template with a finished job: an approved case and a draft case."""
    version = TemplateVersionFactory(generator=generator_model)
    job = GenerationJobFactory(template_version=version, n_cases=2)
    worker.run_generation_job(job_pk=job.pk)
    approved, draft = job.cases.order_by("case_index")
    SyntheticPatient.objects.filter(pk=approved.pk).update(status="approved")
    image = approved.studies.first().series.get(modality="MR").instances.get()
    draft_image = draft.studies.first().series.get(modality="MR").instances.get()
    return {
        "template": version.template.pk,
        "job": job.pk,
        "approved": approved.pk,
        "draft": draft.pk,
        "generator": generator_model.pk,
        "wado": image.wado_uri,
        "draft_wado": draft_image.wado_uri,
        "operation": Operation.objects.create(
            task="cases.tasks.send_to_node", title="Send", requested_by=UserFactory(role="educator")
        ).pk,
    }


def _client(client, role):
    if role != "anonymous":
        client.force_login(UserFactory(role=role))
    return client


# (method, url builder, expected status per role: anonymous, trainee, expert, educator).
# Pages send anonymous users to the login page; the API answers them 403.
MATRIX = [
    ("get", lambda w: reverse("home"), (302, 200, 200, 200)),
    ("get", lambda w: reverse("template-list"), (302, 403, 200, 200)),
    ("get", lambda w: reverse("template-create"), (302, 403, 403, 200)),
    ("get", lambda w: reverse("template-detail", args=[w["template"]]), (302, 403, 200, 200)),
    # Only the template's owner and co-authors edit it (tests/test_permission_matrix.py).
    ("get", lambda w: reverse("template-edit", args=[w["template"]]), (302, 403, 403, 403)),
    ("post", lambda w: reverse("job-launch", args=[w["template"]]), (302, 403, 403, 400)),
    ("get", lambda w: reverse("job-progress", args=[w["job"]]), (302, 403, 403, 200)),
    # An operation's page is for whoever asked for it (tests/cases/test_operations.py).
    ("get", lambda w: reverse("operation", args=[w["operation"]]), (302, 404, 404, 404)),
    ("get", lambda w: reverse("operation-progress", args=[w["operation"]]), (302, 404, 404, 404)),
    ("get", lambda w: reverse("generator-list"), (302, 403, 200, 200)),
    ("get", lambda w: reverse("generator-detail", args=[w["generator"]]), (302, 403, 200, 200)),
    ("get", lambda w: reverse("case-list"), (302, 200, 200, 200)),
    # Trainees see a case only once a quiz of their cohort revealed it (tests/edu).
    ("get", lambda w: reverse("case-detail", args=[w["approved"]]), (302, 404, 200, 200)),
    ("get", lambda w: reverse("case-detail", args=[w["draft"]]), (302, 404, 200, 200)),
    ("get", lambda w: w["wado"], (302, 404, 200, 200)),
    ("get", lambda w: w["draft_wado"], (302, 404, 200, 200)),
    ("get", lambda w: "/api/generators/", (403, 403, 200, 200)),
    ("get", lambda w: "/api/templates/", (403, 403, 200, 200)),
    ("post", lambda w: "/api/templates/", (403, 403, 403, 400)),
    ("post", lambda w: f"/api/templates/{w['template']}/generate/", (403, 403, 403, 400)),
    ("get", lambda w: "/api/jobs/", (403, 403, 403, 200)),
    ("get", lambda w: f"/api/jobs/{w['job']}/", (403, 403, 403, 200)),
    ("get", lambda w: "/api/cases/", (403, 200, 200, 200)),
    ("get", lambda w: f"/api/cases/{w['approved']}/", (403, 404, 200, 200)),
    ("get", lambda w: f"/api/cases/{w['draft']}/", (403, 404, 200, 200)),
    ("get", lambda w: "/admin/", (302, 302, 302, 302)),
]


@pytest.mark.parametrize(
    ("method", "url", "expected"), MATRIX, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(MATRIX)]
)
def test_role_matrix(client, world, settings, monkeypatch, method, url, expected):
    monkeypatch.setattr("gantry.celery.app.send_task", lambda *a, **k: None)
    for role, status in zip(ROLES, expected, strict=True):
        client.logout()
        response = getattr(_client(client, role), method)(url(world))
        assert response.status_code == status, f"{role} {method} {url(world)}"
        if role == "anonymous" and status == 302:
            assert "/login/" in response.url


def test_a_trainee_lists_no_case_outside_a_quiz(client, world):
    client.force_login(UserFactory(role="trainee"))
    assert client.get("/api/cases/").json()["results"] == []
    page = client.get(reverse("case-list")).content.decode()
    assert f'href="/cases/{world["approved"]}/"' not in page
    assert f'href="/cases/{world["draft"]}/"' not in page


def test_anonymous_users_see_the_login_page(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content
