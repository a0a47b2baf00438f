"""An expert logs in through the real site, opens a case, and the viewer shows its images."""

import numpy as np
import pytest

from cases.generation import worker
from cases.models import SyntheticPatient
from tests.browser.conftest import READ_CANVAS
from tests.factories import PASSWORD, GenerationJobFactory, TemplateVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def approved_case(generator_model):
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=1
    )
    worker.run_generation_job(job_pk=job.pk)
    case = job.cases.get()
    SyntheticPatient.objects.filter(pk=case.pk).update(status="approved")
    return case


def test_expert_sees_a_rendered_case_and_scrolls_timepoints(
    live_server, browser, expert, approved_case
):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    errors = []
    context.on("console", lambda m: m.type == "error" and errors.append(m.text))
    context.on("weberror", lambda e: errors.append(str(e.error)))
    page = context.new_page()
    page.goto(f"{live_server.url}{approved_case.get_absolute_url()}")
    assert "/accounts/login/" in page.url  # anonymous: the login page first
    page.fill("input[name=username]", expert.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
    first = page.get_attribute("#gantry-viewer", "data-rendered")
    grey = np.array(page.evaluate(READ_CANVAS, "#gantry-viewer"), dtype=float)
    assert grey.std() > 5, "the viewer canvas is blank"
    assert approved_case.studies.first().study_uid in first

    page.focus("#gantry-viewer")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "first => document.querySelector('#gantry-viewer').dataset.rendered !== first", arg=first
    )
    assert page.get_attribute("#gantry-viewer", "data-timepoint") == "1"
    assert errors == []
    context.close()
