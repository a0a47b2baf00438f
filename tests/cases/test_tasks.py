"""The generation task called as a plain function (no broker): cases, files, atomicity."""

import io
import itertools

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage

from cases.models import GenerationJob, Instance, LesionGroundTruth, Study, SyntheticPatient
from genworker import tasks
from tests.factories import GenerationJobFactory, TemplateVersionFactory


@pytest.fixture
def job(generator_model):
    return GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=2
    )


def _stored_files(media_root):
    return sorted(p for p in media_root.rglob("*.dcm"))


def test_a_job_generates_whole_cases(job):
    tasks.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.error) == ("succeeded", 2, "")
    assert set(job.timings) >= {"generator", "dicom", "storage", "load"}
    for case in job.cases.all():
        studies = list(case.studies.order_by("timepoint"))
        assert [s.timepoint for s in studies] == [0, 1, 2]
        assert [round(s.severity, 3) for s in studies] == [0.2, 0.5, 0.8]
        assert [(b.study_date - a.study_date).days for a, b in itertools.pairwise(studies)] == [
            60,
            60,
        ]
        assert len(case.latent_z) == 32
    assert Instance.objects.filter(series__modality="MR").count() == 6
    assert LesionGroundTruth.objects.count() == 6


def test_written_dicom_reads_back_with_provenance(job):
    tasks.run_generation_job(job_pk=job.pk)
    case = job.cases.get(case_index=0)
    image = Instance.objects.filter(series__study__patient=case, series__modality="MR").first()
    ds = pydicom.dcmread(io.BytesIO(image.file.read()))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
    assert ds.SyntheticData == "YES"
    assert ds.PatientID == case.patient_id
    assert ds.StudyInstanceUID == image.series.study.study_uid
    assert ds.SOPInstanceUID == image.sop_instance_uid
    assert ds.StudyDate == image.series.study.study_date.strftime("%Y%m%d")
    equipment = ds.ContributingEquipmentSequence[0]
    purpose = equipment.PurposeOfReferenceCodeSequence[0]
    assert (purpose.CodeValue, purpose.CodingSchemeDesignator) == ("109100", "DCM")
    assert purpose.CodeMeaning == "Synthesizing Equipment"
    assert equipment.DeviceSerialNumber == job.template_version.generator.sha256
    assert float(ds.WindowWidth) > 0
    assert ds.pixel_array.shape == (32, 32)
    assert ds.pixel_array.std() > 0
    seg = LesionGroundTruth.objects.get(image=image).segmentation
    seg_ds = pydicom.dcmread(io.BytesIO(seg.file.read()))
    assert seg_ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert seg_ds.SyntheticData == "YES"
    assert seg_ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ds.SeriesInstanceUID
    assert int(np.asarray(seg_ds.pixel_array).sum()) == image.lesion.area_pixels


def test_the_same_job_seed_reproduces_the_same_pixels(generator_model):
    version = TemplateVersionFactory(generator=generator_model)
    first = GenerationJobFactory(template_version=version, n_cases=1, seed=99)
    second = GenerationJobFactory(template_version=version, n_cases=1, seed=99)
    for job in (first, second):
        tasks.run_generation_job(job_pk=job.pk)
    pixels = [
        pydicom.dcmread(
            io.BytesIO(
                Instance.objects.filter(series__study__patient__job=job, series__modality="MR")
                .order_by("series__study__timepoint")
                .last()
                .file.read()
            )
        ).pixel_array
        for job in (first, second)
    ]
    np.testing.assert_array_equal(pixels[0], pixels[1])
    a, b = (job.cases.get() for job in (first, second))
    assert a.latent_z == b.latent_z
    assert a.seed == b.seed


def test_running_a_finished_job_again_changes_nothing(job):
    tasks.run_generation_job(job_pk=job.pk)
    files = _stored_files_of(job)
    tasks.run_generation_job(job_pk=job.pk)
    assert SyntheticPatient.objects.filter(job=job).count() == 2
    assert _stored_files_of(job) == files


def _stored_files_of(job):
    _, folders = default_storage.listdir(f"cases/{job.uid}")
    return sorted(folders)


def test_a_resumed_job_generates_only_the_missing_cases(job):
    tasks.run_generation_job(job_pk=job.pk)
    job.cases.get(case_index=1).delete()
    GenerationJob.objects.filter(pk=job.pk).update(status="running")
    tasks.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert sorted(job.cases.values_list("case_index", flat=True)) == [0, 1]
    assert job.status == "succeeded"


def test_a_storage_failure_mid_case_leaves_no_rows_and_no_files(job, monkeypatch, media_root):
    real_save = default_storage.save
    calls = {"n": 0}

    def failing_save(name, content, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # the second timepoint's segmentation
            raise OSError("No space left on device")
        return real_save(name, content, *args, **kwargs)

    monkeypatch.setattr(default_storage, "save", failing_save)
    tasks.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "case 1 of 2: OSError: No space left on device"
    assert SyntheticPatient.objects.count() == 0
    assert Study.objects.count() == 0
    assert list(media_root.glob(f"cases/{job.uid}/**/*.dcm")) == []


def test_a_database_failure_mid_case_removes_the_files(job, monkeypatch, media_root):
    real_create = LesionGroundTruth.objects.create
    calls = {"n": 0}

    def failing_create(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        return real_create(**kwargs)

    monkeypatch.setattr(LesionGroundTruth.objects, "create", failing_create)
    tasks.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "RuntimeError: database went away" in job.error
    assert SyntheticPatient.objects.count() == 0
    assert Instance.objects.count() == 0
    assert list(media_root.glob(f"cases/{job.uid}/**/*.dcm")) == []


def test_a_second_delivery_committing_the_same_case_backs_off(job, media_root):
    from genworker.pipeline import generate_case

    loaded = tasks.load_generator_for(job.template_version.generator, "cpu")
    case = generate_case(loaded, tasks.case_request(job, 0), software_version="test")
    assert tasks.commit_case(job, case) is not None
    assert tasks.commit_case(job, case) is None  # the duplicate: unique (job, case index)
    assert SyntheticPatient.objects.count() == 1
    assert len(list(media_root.glob(f"cases/{job.uid}/**/*.dcm"))) == 6


def test_an_unreadable_checkpoint_fails_the_job_with_its_reason(job, settings, tmp_path):
    settings.GANTRY_WORKER_CACHE_DIR = tmp_path
    generator = job.template_version.generator
    generator.checkpoint.save("broken.pt", io.BytesIO(b"not a checkpoint"), save=True)
    tasks.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("ValueError") or job.error.startswith("UnpicklingError")
    assert SyntheticPatient.objects.count() == 0
