"""The generation task called as a plain function (no broker): cases, files, atomicity."""

import io
import itertools
import threading
from datetime import timedelta

import numpy as np
import pydicom
import pytest
import torch
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases.generation import persistence, worker
from cases.models import GenerationJob, Instance, LesionGroundTruth, Study, SyntheticPatient
from tests.factories import GenerationJobFactory, TemplateVersionFactory


@pytest.fixture
def job(generator_model):
    return GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=2
    )


def _stored_files(media_root):
    return sorted(p for p in media_root.rglob("*.dcm"))


def test_a_job_generates_whole_cases(job):
    worker.run_generation_job(job_pk=job.pk)
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
    worker.run_generation_job(job_pk=job.pk)
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
        worker.run_generation_job(job_pk=job.pk)
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
    worker.run_generation_job(job_pk=job.pk)
    files = _stored_files_of(job)
    worker.run_generation_job(job_pk=job.pk)
    assert SyntheticPatient.objects.filter(job=job).count() == 2
    assert _stored_files_of(job) == files


def _stored_files_of(job):
    _, folders = default_storage.listdir(f"cases/{job.uid}")
    return sorted(folders)


def test_a_chunk_whose_worker_died_is_taken_over_and_only_its_missing_cases_made(job):
    worker.run_generation_job(job_pk=job.pk)
    first_case = job.cases.get(case_index=0)
    job.cases.get(case_index=1).delete()
    # As a worker leaves it when killed after committing case 0: chunk leased, lease ended.
    job.chunks.update(status="running", worker="dead@host", lease_expires_at=timezone.now())
    GenerationJob.objects.filter(pk=job.pk).update(status="running")
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert sorted(job.cases.values_list("pk", "case_index")) == [
        (first_case.pk, 0),
        (job.cases.get(case_index=1).pk, 1),
    ]
    assert (job.status, job.done) == ("succeeded", 2)
    assert job.chunks.get().attempts == 2


def test_a_chunk_leased_by_a_live_worker_is_left_to_it(job):
    job.plan_chunks()
    job.chunks.update(
        status="running",
        worker="alive@host",
        lease_expires_at=timezone.now() + timedelta(seconds=60),
    )
    wait = worker.run_chunk(job_pk=job.pk, chunk_index=0, worker="other@host")
    assert 1 < wait <= 61
    assert job.cases.count() == 0
    assert job.chunks.get().worker == "alive@host"


def test_a_storage_failure_mid_case_leaves_no_rows_and_no_files(job, monkeypatch, media_root):
    real_save = persistence._save

    def failing_save(name, content):
        if "/0000/" in name and name.endswith("t01-seg.dcm"):  # case 1's second segmentation
            raise OSError("No space left on device")
        return real_save(name, content)

    monkeypatch.setattr(persistence, "_save", failing_save)
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "case 1 of 2: OSError: No space left on device"
    assert SyntheticPatient.objects.count() == 0
    assert Study.objects.count() == 0
    assert list(media_root.glob(f"cases/{job.uid}/**/*.dcm")) == []


def test_case_files_get_the_storages_file_permissions(job, settings, media_root):
    settings.FILE_UPLOAD_PERMISSIONS = 0o640
    worker.run_generation_job(job_pk=job.pk)
    files = list(media_root.glob(f"cases/{job.uid}/**/*.dcm"))
    assert len(files) == 12
    assert {path.stat().st_mode & 0o777 for path in files} == {0o640}


def test_a_storage_off_the_local_disk_gets_the_files_through_its_own_api(job, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.error) == ("succeeded", 2, "")
    instances = Instance.objects.filter(series__study__patient__job=job)
    assert instances.count() == 12
    for instance in instances:
        assert default_storage.exists(instance.file.name)
        with default_storage.open(instance.file.name) as file:
            assert pydicom.dcmread(file).SOPInstanceUID == instance.sop_instance_uid


def test_a_database_failure_mid_case_removes_the_files(job, monkeypatch, media_root):
    real_insert_rows = persistence.insert_rows

    def insert_rows(model, rows, **kwargs):
        if model is LesionGroundTruth:  # the patient, studies, series and instances are in
            raise RuntimeError("database went away")
        return real_insert_rows(model, rows, **kwargs)

    monkeypatch.setattr(persistence, "insert_rows", insert_rows)
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "RuntimeError: database went away" in job.error
    assert SyntheticPatient.objects.count() == 0
    assert Instance.objects.count() == 0
    assert list(media_root.glob(f"cases/{job.uid}/**/*.dcm")) == []


def test_a_second_delivery_committing_the_same_case_backs_off(job, media_root):
    from genworker.pipeline import generate_case

    loaded = worker.load_generator_for(job.template_version.generator, "cpu")
    case = generate_case(loaded, worker.case_request(job, 0), software_version="test")
    assert persistence.commit_case(job, case) is not None
    assert persistence.commit_case(job, case) is None  # the duplicate: unique (job, case index)
    assert SyntheticPatient.objects.count() == 1
    assert len(list(media_root.glob(f"cases/{job.uid}/**/*.dcm"))) == 6


def test_the_cases_of_one_batch_are_committed_with_one_insert_per_table(
    generator_model, batch_images
):
    batch_images(6)  # two cases of three timepoints per batch: 5 cases in 3 batches
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=5
    )
    with CaptureQueriesContext(connection) as queries:
        worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done) == ("succeeded", 5)
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    for table in ("syntheticpatient", "study", "series", "instance", "lesiongroundtruth"):
        assert sum(f'"cases_{table}"' in sql.split("(")[0] for sql in inserts) == 3, table
    for case in job.cases.all():
        assert case.studies.count() == 3
        assert Instance.objects.filter(series__study__patient=case).count() == 6


@pytest.mark.parametrize(("every_s", "writes"), [(3600, 1), (0, 4)])
def test_progress_is_written_when_due_and_when_the_chunk_ends(
    generator_model, batch_images, monkeypatch, every_s, writes
):
    batch_images(3)  # one case of three timepoints per batch: 4 batches
    monkeypatch.setattr(worker, "RECORD_EVERY_S", every_s)
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=4
    )
    with CaptureQueriesContext(connection) as queries:
        worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done) == ("succeeded", 4)
    progress = 'UPDATE "cases_generationjob" SET "done"'
    assert sum(q["sql"].startswith(progress) for q in queries.captured_queries) == writes


def test_a_batch_holding_a_case_another_delivery_committed_commits_the_rest(
    generator_model, batch_images, monkeypatch, media_root
):
    batch_images(6)
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=2
    )
    real_commit = worker.commit_cases

    def commit_cases(cases):
        if len(cases) == 2:  # the batch: another delivery commits its first case meanwhile
            real_commit(cases[:1])
        return real_commit(cases)

    monkeypatch.setattr(worker, "commit_cases", commit_cases)
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.error) == ("succeeded", 2, "")
    assert sorted(job.cases.values_list("case_index", flat=True)) == [0, 1]
    referenced = {i.file.name for i in Instance.objects.filter(series__study__patient__job=job)}
    on_disk = {str(p.relative_to(media_root)) for p in media_root.glob(f"cases/{job.uid}/**/*.dcm")}
    assert on_disk == referenced
    assert len(referenced) == 12


def test_an_unreadable_checkpoint_fails_the_job_with_its_reason(job, settings, tmp_path):
    settings.GANTRY_WORKER_CACHE_DIR = tmp_path
    generator = job.template_version.generator
    generator.checkpoint.save("broken.pt", io.BytesIO(b"not a checkpoint"), save=True)
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("ValueError") or job.error.startswith("UnpicklingError")
    assert SyntheticPatient.objects.count() == 0


@pytest.fixture
def batch_images(settings):
    """Set GANTRY_BATCH_IMAGES for generators loaded from now on in this process."""

    def _set(images):
        settings.GANTRY_BATCH_IMAGES = images
        worker._load_cached.cache_clear()

    yield _set
    worker._load_cached.cache_clear()


def test_jobs_queued_together_share_generator_batches(generator_model, batch_images):
    batch_images(64)
    version = TemplateVersionFactory(generator=generator_model)
    first, second = (GenerationJobFactory(template_version=version, n_cases=2) for _ in "ab")
    for job in (first, second):
        job.plan_chunks()
    assert worker.run_chunk(job_pk=first.pk, chunk_index=0, worker="w1@host") is None
    for job in (first, second):
        job.refresh_from_db()
        assert (job.status, job.done) == ("succeeded", 2)
        assert job.chunks.get().worker == "w1@host"
    # The second job's own message arrives later and finds nothing to do.
    assert worker.run_chunk(job_pk=second.pk, chunk_index=0, worker="w2@host") is None
    assert SyntheticPatient.objects.count() == 4
    assert second.chunks.get().attempts == 1


def test_a_failing_case_fails_only_its_own_job_in_a_shared_batch(
    generator_model, batch_images, media_root
):
    batch_images(64)
    version = TemplateVersionFactory(generator=generator_model)
    first, second = (GenerationJobFactory(template_version=version, n_cases=2) for _ in "ab")
    for job in (first, second):
        job.plan_chunks()
    blocker = media_root / "cases" / str(second.uid) / "0001"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    worker.run_chunk(job_pk=first.pk, chunk_index=0, worker="w1@host")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.done) == ("succeeded", 2)
    assert (second.status, second.done) == ("failed", 1)
    assert second.error.startswith("case 2 of 2: ")


def test_a_worker_that_runs_out_of_gpu_memory_halves_its_batch(
    generator_model, batch_images, monkeypatch
):
    batch_images(12)
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=3
    )
    loaded = worker.load_generator_for(generator_model, "cpu")
    real_synthesis = loaded.synthesis
    sizes = []

    def small_gpu(ws):
        sizes.append(len(ws))
        if len(ws) > 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
        return real_synthesis(ws)

    monkeypatch.setattr(loaded, "synthesis", small_gpu)
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.error) == ("succeeded", 3, "")
    assert sizes[:3] == [9, 6, 3]  # three cases of three timepoints; 12 halved, halved again
    assert max(sizes[3:]) <= 3
    assert loaded.max_batch == 3  # kept for the next batches of this worker


def test_files_of_an_attempt_that_never_committed_are_swept_when_the_job_succeeds(job, media_root):
    dead = media_root / "cases" / str(job.uid) / "0000" / "deadattempt1"
    dead.mkdir(parents=True)
    (dead / "t00-image.dcm").write_bytes(b"written by a worker killed before its commit")
    worker.run_generation_job(job_pk=job.pk)
    assert not (dead / "t00-image.dcm").exists()
    referenced = {i.file.name for i in Instance.objects.filter(series__study__patient__job=job)}
    on_disk = {str(p.relative_to(media_root)) for p in media_root.glob(f"cases/{job.uid}/**/*.dcm")}
    assert on_disk == referenced


@pytest.fixture
def writer_threads(settings):
    """Cases written by two writer threads; the test must commit (transactional database)."""
    settings.GANTRY_WRITER_THREADS = 2


@pytest.mark.django_db(transaction=True)
def test_writer_threads_store_one_batch_while_the_next_samples(
    generator_model, batch_images, writer_threads, monkeypatch
):
    batch_images(6)  # two cases of three timepoints per batch: 5 cases in 3 batches
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=5
    )
    second_batch_sampling = threading.Event()
    real_batch, real_commit = worker.progression_batch, worker.commit_cases
    batches, committed_by = [], []

    def progression_batch(loaded, specs):
        batches.append(len(specs))
        if len(batches) == 2:
            second_batch_sampling.set()
        return real_batch(loaded, specs)

    def commit_cases(cases):
        # Written in the sampling thread, one batch after another, this would time out.
        assert second_batch_sampling.wait(timeout=30), "batch 2 did not sample meanwhile"
        committed_by.append(threading.current_thread().name)
        return real_commit(cases)

    monkeypatch.setattr(worker, "progression_batch", progression_batch)
    monkeypatch.setattr(worker, "commit_cases", commit_cases)
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.error) == ("succeeded", 5, "")
    assert batches == [2, 2, 1]
    assert set(committed_by) <= {"gantry-writer-0", "gantry-writer-1"}
    for case in job.cases.all():
        assert case.studies.count() == 3
        assert Instance.objects.filter(series__study__patient=case).count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_case_failing_in_a_writer_thread_fails_the_job_and_leaves_no_half_case(
    generator_model, batch_images, writer_threads, media_root
):
    batch_images(6)
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=4
    )
    blocker = media_root / "cases" / str(job.uid) / "0001"  # case 2's folder is a file
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("case 2 of 4: ")
    assert not job.cases.filter(case_index=1).exists()
    assert job.done == job.cases.count() < 4
    for case in job.cases.all():
        assert case.studies.count() == 3
        assert Instance.objects.filter(series__study__patient=case).count() == 6
    assert job.chunks.get().status == "failed"


def test_a_worker_set_to_compile_compiles_each_generator_once_when_it_loads_it(
    generator_model, batch_images, settings, monkeypatch
):
    from genworker.checkpoint import LoadedGenerator

    compiled = []
    monkeypatch.setattr(LoadedGenerator, "compile", lambda loaded: compiled.append(loaded))
    settings.GANTRY_COMPILE_GENERATOR = True
    batch_images(4)
    loaded = worker.load_generator_for(generator_model, "cpu")
    assert worker.load_generator_for(generator_model, "cpu") is loaded
    assert compiled == [loaded]
