"""An expert logs in through the real site, opens a case, and the viewer shows its images:
each series of a study in its own viewport, timepoints side by side, with orientation
markers from the generated DICOM."""

import io

import numpy as np
import pydicom
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from pydicom.uid import generate_uid

from cases.generation import worker
from cases.models import Instance, Series, Study, SyntheticPatient
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


def add_contrast(study: Study, number: int, description: str) -> Instance:
    """A second image series in `study`: a copy of its image, inverted, as another contrast."""
    source = study.series.get(series_number=1).instances.get()
    with source.file.open("rb") as fh:
        ds = pydicom.dcmread(fh)
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.PixelData = (ds.pixel_array.max() - ds.pixel_array).astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    name = default_storage.save(
        f"test-contrasts/{ds.SOPInstanceUID}.dcm", ContentFile(buffer.getvalue())
    )
    series = Series.objects.create(
        study=study,
        series_uid=ds.SeriesInstanceUID,
        modality="MR",
        series_number=number,
        description=description,
    )
    return Instance.objects.create(
        series=series,
        sop_instance_uid=ds.SOPInstanceUID,
        sop_class_uid=ds.SOPClassUID,
        instance_number=1,
        file=name,
        size=len(buffer.getvalue()),
        seed=source.seed,
        truncation=source.truncation,
        severity=source.severity,
        latent_w=[],
    )


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
