"""An educator's first template, walked in the browser: write it, generate its cases (the
test runs the queued job with the worker's own code), follow the job to its cases and open
one in the viewer."""

from __future__ import annotations

import pytest

from cases.generation import worker
from cases.models import GenerationJob
from tests.browser.quiz_page import logged_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIELDS = {
    "title": "Glioma growth, first try",
    "body_region": "brain",
    "truncation": "0.7",
    "timepoints": "3",
    "severity_from": "0.2",
    "severity_to": "0.9",
    "interval_days": "90",
    "age_min": "40",
    "age_max": "70",
    "sex_mix": "0.5",
    "history": "A {age}-year-old {sex_word} with seizures.",
    "diagnosis": "Glioma",
}


def test_an_educator_writes_a_template_generates_its_cases_and_opens_one(
    browser, live_server, educator, generator_model, media_root, monkeypatch
):
    queued = []
    monkeypatch.setattr("gantry.celery.app.send_task", lambda *a, **k: queued.append(k))
    errors: list[str] = []
    context, page = logged_in_page(browser, live_server, educator, errors)

    page.goto(f"{live_server.url}/templates/new/")
    page.select_option("select[name=generator]", str(generator_model.pk))
    page.select_option("select[name=finding]", "glioma")
    for name, value in FIELDS.items():
        page.fill(f"[name={name}]", value)
    page.click("form.stacked button[type=submit]")
    page.wait_for_selector("#generate-form")
    assert "Glioma growth, first try" in page.inner_text("h1")

    page.fill("input[name=n_cases]", "2")
    assert page.inner_text("#generate-button") == "Generate 2 cases"  # follows the number
    page.click("#generate-button")
    page.wait_for_selector("tr.job")
    job = GenerationJob.objects.get()
    assert job.n_cases == 2
    assert queued  # sent to the workers once committed

    worker.run_generation_job(job_pk=job.pk)
    page.goto(f"{live_server.url}{job.template_version.template.get_absolute_url()}")
    assert page.inner_text("a.job-cases") == "2 cases"
    page.click("a.job-cases")
    case_links = page.locator("table td:first-child a")
    case_links.first.wait_for()
    assert case_links.count() == 2  # the job's cases, and only those
    case_links.first.click()
    page.wait_for_selector("#gantry-viewer[data-rendered]")
    assert errors == []
    context.close()
