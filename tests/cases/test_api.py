import pytest

from cases.models import CaseTemplate, GenerationJob
from tests.factories import TemplateVersionFactory, version_content


def _payload(generator_model, **overrides):
    content = version_content(generator_model, **overrides)
    content["generator"] = generator_model.pk
    content.pop("modality")
    return content


def test_create_then_update_makes_versions(login, educator, generator_model):
    client = login(educator)
    created = client.post(
        "/api/templates/", _payload(generator_model), content_type="application/json"
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    updated = client.put(
        f"/api/templates/{pk}/",
        _payload(generator_model, diagnosis="GBM"),
        content_type="application/json",
    )
    assert updated.status_code == 200
    assert updated.json()["versions"] == [2, 1]
    assert updated.json()["current"]["diagnosis"] == "GBM"


def test_invalid_template_is_a_400_naming_the_field(login, educator, generator_model):
    response = login(educator).post(
        "/api/templates/",
        _payload(generator_model, finding="fracture"),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "finding" in response.json()
    assert CaseTemplate.objects.count() == 0


def test_generate_endpoint_returns_the_job(
    login, educator, generator_model, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("gantry.celery.app.send_task", lambda *a, **k: None)
    version = TemplateVersionFactory(generator=generator_model)
    with django_capture_on_commit_callbacks(execute=True):
        response = login(educator).post(
            f"/api/templates/{version.template.pk}/generate/",
            {"n_cases": 4, "seed": 11},
            content_type="application/json",
        )
    assert response.status_code == 202
    job = GenerationJob.objects.get(pk=response.json()["id"])
    assert (job.n_cases, job.seed, job.template_version) == (4, 11, version)


@pytest.mark.parametrize("body", [{}, {"n_cases": 0}, {"n_cases": "x"}, {"n_cases": 2, "seed": -1}])
def test_generate_endpoint_validates(login, educator, generator_model, body):
    version = TemplateVersionFactory(generator=generator_model)
    response = login(educator).post(
        f"/api/templates/{version.template.pk}/generate/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert GenerationJob.objects.count() == 0


def test_openapi_schema_is_served(login, educator):
    response = login(educator).get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/templates/" in response.content
