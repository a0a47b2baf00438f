"""An expert logs in through the real site, opens a case, and the viewer shows its images:
each series of a study in its own viewport, timepoints side by side, with orientation
markers from the generated DICOM."""

import numpy as np
import pytest

from cases.generation import worker
from cases.models import SyntheticPatient
from tests.browser.conftest import READ_CANVAS
from tests.factories import (
    PASSWORD,
    GenerationJobFactory,
    TemplateVersionFactory,
    add_contrast,
)

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


def test_expert_sees_every_series_of_a_case_and_scrolls_timepoints(
    live_server, browser, expert, approved_case
):
    flair = [add_contrast(study, 2, "T2-FLAIR") for study in approved_case.studies.all()]
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

    # Series across, timepoints down: the first two timepoints, each in its two series.
    assert page.get_attribute("#gantry-viewer", "data-layout") == "2x2"
    page.wait_for_selector(f".gv-cell[data-rendered*='{flair[1].sop_instance_uid}']")
    assert "T2-FLAIR" in page.inner_text(".gv-cell[data-study='0'][data-series='2']")
    # The generator writes axial ImageOrientationPatient [1,0,0,0,1,0].
    assert (
        page.get_attribute(".gv-cell[data-study='0'][data-series='1']", "data-markers") == "R,L,A,P"
    )

    page.focus("#gantry-viewer")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => document.querySelector('#gantry-viewer').dataset.timepoint === '2'"
    )
    page.wait_for_selector(f".gv-cell[data-rendered*='{flair[2].sop_instance_uid}']")
    assert page.get_attribute("#gantry-viewer", "data-rendered") != first
    assert errors == []
    context.close()
