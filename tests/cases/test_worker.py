"""A real Celery worker process on the configured broker (Redis in CI) and database."""

import pytest
from django.core.files.storage import default_storage

from cases.models import GenerationJob, SyntheticPatient
from tests.factories import GenerationJobFactory, TemplateVersionFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _finished(job):
    def check():
        job.refresh_from_db()
        return job.is_finished

    return check


def test_a_job_runs_to_success_on_a_worker(celery_worker, generator_model, educator, wait_for):
    version = TemplateVersionFactory(generator=generator_model)
    job = version.launch_job(requested_by=educator, n_cases=2, seed=5)
    wait_for(_finished(job), timeout=120, what="the job")
    assert (job.status, job.done, job.total) == ("succeeded", 2, 2)
    assert job.device == "cpu"
    assert SyntheticPatient.objects.filter(job=job).count() == 2


def test_a_failing_case_marks_the_job_failed_and_leaves_no_partial_case(
    celery_worker, generator_model, educator, wait_for, media_root
):
    version = TemplateVersionFactory(generator=generator_model)
    job = GenerationJobFactory(template_version=version, n_cases=3)
    # The storage cannot create the second case's folder: a file sits where it belongs.
    blocker = media_root / "cases" / str(job.uid) / "0001"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    job.enqueue()
    wait_for(_finished(job), timeout=120, what="the job")
    assert job.status == "failed"
    assert job.error.startswith("case 2 of 3: ")
    # Case 3 samples in the next batch while a writer thread stores case 2's batch, so it
    # may be committed before case 2's failure is known; whole, like case 1.
    indexes = set(job.cases.values_list("case_index", flat=True))
    assert 0 in indexes
    assert 1 not in indexes
    assert job.done == len(indexes)
    for case in job.cases.all():
        assert case.studies.count() == 3
    _, files = default_storage.listdir(f"cases/{job.uid}")
    assert files == ["0001"]  # only the blocker: nothing of case 2 was written


def test_a_task_delivered_twice_creates_each_case_once(celery_worker, generator_model, wait_for):
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=2
    )
    job.enqueue()
    job.enqueue()
    wait_for(_finished(job), timeout=120, what="the job")
    wait_for(
        lambda: celery_worker.log.read_text().count("succeeded in") >= 2,
        timeout=60,
        what="the second delivery",
    )
    assert GenerationJob.objects.get(pk=job.pk).status == "succeeded"
    assert sorted(
        SyntheticPatient.objects.filter(job=job).values_list("case_index", flat=True)
    ) == [0, 1]
