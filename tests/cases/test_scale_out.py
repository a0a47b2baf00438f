"""A job split into chunks over two real Celery worker processes, one of them killed."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage

from cases.models import GenerationJob, Instance, SyntheticPatient
from tests.factories import GenerationJobFactory, TemplateVersionFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHUNK = {"GANTRY_CHUNK_CASES": "3"}
ON_REDIS = settings.CELERY_BROKER_URL.startswith("redis")


class ProgressWatch:
    """Reads the job's progress while it runs: (done, cases committed) per reading."""

    def __init__(self, job: GenerationJob) -> None:
        self.job, self.readings, self.stop = job, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from django.db import connection

        try:
            while not self.stop.wait(0.1):
                job = GenerationJob.objects.get(pk=self.job.pk)
                self.readings.append((job.done, job.cases.count()))
                if job.is_finished:
                    return
        finally:
            connection.close()


def _stop(pid: int) -> None:
    """Stop process ``pid`` and wait until all its threads are stopped (Linux /proc)."""
    os.kill(pid, signal.SIGSTOP)
    while not all(state == "T" for state in _thread_states(pid)):
        time.sleep(0.001)


def _thread_states(pid: int) -> list[str]:
    states = []
    for thread in Path(f"/proc/{pid}/task").iterdir():
        try:
            states.append((thread / "stat").read_text().rsplit(")", 1)[1].split()[0])
        except FileNotFoundError:  # the thread ended
            continue
    return states


def _chunk_job(generator_model, n_cases):
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=n_cases
    )
    return job


def _assert_complete_and_unique(job, media_root):
    job.refresh_from_db()
    assert (job.status, job.done, job.error) == ("succeeded", job.n_cases, "")
    indexes = list(SyntheticPatient.objects.filter(job=job).values_list("case_index", flat=True))
    assert sorted(indexes) == list(range(job.n_cases))
    assert set(job.chunks.values_list("status", flat=True)) == {"done"}
    referenced = {i.file.name for i in Instance.objects.filter(series__study__patient__job=job)}
    on_disk = {
        str(path.relative_to(media_root)) for path in media_root.glob(f"cases/{job.uid}/**/*.dcm")
    }
    assert on_disk == referenced  # no file of a lost attempt left behind
    assert default_storage.exists(f"cases/{job.uid}")


def test_two_workers_share_the_chunks_of_a_job_and_progress_stays_exact(
    start_worker, generator_model, wait_for, media_root, settings
):
    settings.GANTRY_CHUNK_CASES = 3
    first, second = start_worker("one", **CHUNK), start_worker("two", **CHUNK)
    job = _chunk_job(generator_model, 18)
    watch = ProgressWatch(job)
    job.enqueue()
    wait_for(lambda: GenerationJob.objects.get(pk=job.pk).is_finished, timeout=180, what="job")
    watch.thread.join(timeout=10)
    _assert_complete_and_unique(job, media_root)
    assert job.chunks.count() == 6
    workers = set(job.chunks.values_list("worker", flat=True))
    assert {w.split("@")[0] + "@" for w in workers} == {first.name, second.name}
    done = [reading[0] for reading in watch.readings]
    assert done == sorted(done)  # never goes back
    assert all(done_ <= committed for done_, committed in watch.readings)


@pytest.mark.skipif(
    not ON_REDIS, reason="redelivery of a dead worker's message needs the Redis broker (as CI)"
)
def test_a_worker_killed_mid_chunk_loses_no_chunk_and_duplicates_no_case(
    start_worker, generator_model, wait_for, media_root, settings
):
    # Two long chunks, sampled one image per generator call: a worker spends most of a chunk
    # between its first and its last commit, where the victim is to be killed.
    settings.GANTRY_CHUNK_CASES = 12
    fast_takeover = {
        "GANTRY_CHUNK_CASES": "12",
        "GANTRY_BATCH_IMAGES": "1",
        "GANTRY_CHUNK_LEASE_S": "4",
        "GANTRY_BROKER_VISIBILITY_TIMEOUT": "6",
        "GANTRY_BROKER_RESTORE_INTERVAL": "1",
    }
    # The victim alone at first, and it runs only in short slices while the test watches
    # (every check is made with it stopped), so however loaded the machine, it is frozen
    # after its first commit of a chunk and before its last; the survivor starts after.
    victim = start_worker("victim", **fast_takeover)
    _stop(victim.process.pid)
    job = _chunk_job(generator_model, 24)
    job.enqueue()

    def victim_frozen_mid_chunk() -> bool:
        chunk = job.chunks.filter(status="running", worker__startswith=victim.name).first()
        committed = chunk and job.cases.filter(case_index__in=chunk.case_indexes).count()
        if chunk is not None and committed == chunk.n_cases:
            raise AssertionError("the victim finished its chunk before it was stopped")
        if committed:
            return True
        os.kill(victim.process.pid, signal.SIGCONT)
        time.sleep(0.02)  # a slice much shorter than the chunk's dozen cases
        _stop(victim.process.pid)
        return False

    wait_for(victim_frozen_mid_chunk, timeout=120, what="the victim's chunk", interval=0)
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait(timeout=10)
    (killed,) = job.chunks.filter(status="running", worker__startswith=victim.name)
    survivor = start_worker("survivor", **fast_takeover)

    wait_for(lambda: GenerationJob.objects.get(pk=job.pk).is_finished, timeout=180, what="job")
    _assert_complete_and_unique(job, media_root)
    killed.refresh_from_db()
    assert killed.status == "done"
    assert killed.worker.startswith(survivor.name)
    assert killed.attempts == 2
