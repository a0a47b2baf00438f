"""Normal twins: a job that asks for them stores, beside each case, the same synthetic patient
(model, seed, z) generated without the finding, marked synthetic and traceable like any
image, and kept out of every listing of cases."""

import numpy as np
import pydicom
import pytest

from cases.generation import worker
from cases.models import (
    GenerationChunk,
    Instance,
    LesionGroundTruth,
    SyntheticPatient,
    instances_visible_to,
)
from cases.models import hiding as hiding_module
from cases.models.hiding import Hidden, register_hidden_filter
from tests.factories import GenerationJobFactory, TemplateVersionFactory


@pytest.fixture
def twinned_job(generator_model):
    version = TemplateVersionFactory(generator=generator_model)
    job = GenerationJobFactory(template_version=version, n_cases=2, with_twins=True)
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    return job


def _images(patient):
    return list(
        Instance.objects.filter(series__study__patient=patient)
        .exclude(series__modality="SEG")
        .order_by("series__study__timepoint", "series__series_number")
    )


def test_a_job_with_twins_makes_each_case_its_twin_with_the_same_z(twinned_job):
    assert twinned_job.status == "succeeded", twinned_job.error
    assert twinned_job.done == 2  # progress counts cases, not twins
    cases = list(twinned_job.cases.cases().order_by("case_index"))
    assert len(cases) == 2
    for case in cases:
        twin = case.normal_twin
        assert twin.twin_of == case
        assert twin.is_twin
        assert not case.is_twin
        assert twin.seed == case.seed
        assert twin.latent_z == case.latent_z
        assert (twin.sex, twin.birth_date) == (case.sex, case.birth_date)
        assert twin.history == case.history
        assert twin.patient_id != case.patient_id
        assert twin.template_version == case.template_version
        case_studies, twin_studies = list(case.studies.all()), list(twin.studies.all())
        assert [s.study_date for s in twin_studies] == [s.study_date for s in case_studies]
        assert [s.severity for s in twin_studies] == [0.0] * len(case_studies)
        assert max(s.severity for s in case_studies) > 0
        # The case's lesion grows at non-zero severity; the twin has none at any timepoint.
        assert LesionGroundTruth.objects.filter(image__series__study__patient=case).exists()
        twin_truth = LesionGroundTruth.objects.filter(image__series__study__patient=twin)
        assert twin_truth.count() == len(twin_studies)
        assert not twin_truth.filter(area_pixels__gt=0).exists()
        # Same identity, another condition: the w the synthesis network received differs.
        case_w = np.array(_images(case)[-1].latent_w)
        twin_w = np.array(_images(twin)[-1].latent_w)
        assert not np.allclose(case_w, twin_w)


def test_a_twins_dicom_is_synthetic_and_traceable(twinned_job):
    case = twinned_job.cases.cases().first()
    twin = case.normal_twin
    case_uids = {i.sop_instance_uid for i in _images(case)}
    for image in _images(twin):
        assert image.seed == case.seed
        assert image.severity == 0.0
        assert image.sop_instance_uid not in case_uids
        with image.file.open("rb") as fh:
            ds = pydicom.dcmread(fh)
        assert ds.SyntheticData == "YES"
        assert ds.PatientID == twin.patient_id
        assert ds.StudyInstanceUID == image.series.study.study_uid
        assert "twin" not in ds.StudyDescription.lower()
        assert "twin" not in ds.SeriesDescription.lower()
        assert ds.ContributingEquipmentSequence[0].Manufacturer


def test_listings_show_cases_only(twinned_job, login, educator):
    twins = SyntheticPatient.objects.filter(twin_of__isnull=False)
    assert twins.count() == 2
    assert not SyntheticPatient.objects.cases().filter(pk__in=twins).exists()
    page = login(educator).get("/cases/")
    assert page.status_code == 200
    for twin in twins:
        assert twin.patient_id not in page.content.decode()
        assert twin.twin_of.patient_id in page.content.decode()
    api = login(educator).get("/api/cases/").json()
    listed = {row["patient_id"] for row in api.get("results", api)}
    assert listed == set(twinned_job.cases.cases().values_list("patient_id", flat=True))


def test_a_redelivered_chunk_makes_no_second_twin(twinned_job):
    GenerationChunk.objects.filter(job=twinned_job).update(status=GenerationChunk.Status.QUEUED)
    for chunk in twinned_job.chunks.all():
        worker.run_chunk(job_pk=twinned_job.pk, chunk_index=chunk.index, worker="again")
    assert SyntheticPatient.objects.filter(job=twinned_job).count() == 4


def test_a_job_without_twins_makes_none(make_cases):
    (case,) = make_cases(1)
    assert not SyntheticPatient.objects.filter(twin_of=case).exists()
    assert not hasattr(case, "normal_twin")


def test_hiding_a_case_hides_its_twin_and_the_other_way(twinned_job, expert, monkeypatch):
    case = twinned_job.cases.cases().order_by("case_index").first()
    twin = case.normal_twin
    monkeypatch.setattr(hiding_module, "_filters", [])
    register_hidden_filter(lambda user: Hidden(cases=SyntheticPatient.objects.filter(pk=case.pk)))
    visible = SyntheticPatient.objects.not_hidden_from(expert)
    assert not visible.filter(pk__in=[case.pk, twin.pk]).exists()
    assert visible.count() == 2  # the other case and its twin
    monkeypatch.setattr(hiding_module, "_filters", [])
    register_hidden_filter(
        lambda user: Hidden(instances=Instance.objects.filter(series__study__patient=twin))
    )
    visible = SyntheticPatient.objects.not_hidden_from(expert)
    assert not visible.filter(pk__in=[case.pk, twin.pk]).exists()

    reachable = instances_visible_to(expert)
    assert not reachable.filter(series__study__patient__in=[case, twin]).exists()
    assert reachable.exists()


def test_the_case_page_links_case_and_twin_for_educators_only(
    twinned_job, login, educator, trainee
):
    case = twinned_job.cases.cases().first()
    twin = case.normal_twin
    page = login(educator).get(case.get_absolute_url()).content.decode()
    assert twin.get_absolute_url() in page
    twin_page = login(educator).get(twin.get_absolute_url()).content.decode()
    assert case.get_absolute_url() in twin_page
    assert "generated without the finding" in twin_page
    assert login(trainee).get(twin.get_absolute_url()).status_code == 404
