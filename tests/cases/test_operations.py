"""Background operations: an import into a pool from its page answers at once with a link to
the operation's status page; the cpu-queue task imports, reports progress and the result, and
a failure part way marks the operation failed with its reason and keeps nothing of it."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from cases.models import Operation, ReferencePool
from cases.reference import dicom_import
from tests.cases import dicom_samples as samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(educator):
    return ReferencePool.objects.create(name="knees", created_by=educator)


def upload(web, pool, files, commit, kind="images"):
    with commit(execute=True):
        return web.post(f"/reference/{pool.pk}/", {"files": files, "kind": kind})


def two_images_in_a_zip() -> SimpleUploadedFile:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.dcm", samples.to_bytes(samples.dataset()))
        zf.writestr("b.dcm", samples.to_bytes(samples.dataset()))
    return SimpleUploadedFile("two.zip", archive.getvalue())


def test_an_upload_is_queued_and_the_page_answers_with_its_status(
    login, educator, pool, task_queue, django_capture_on_commit_callbacks
):
    web = login(educator)
    files = [two_images_in_a_zip(), SimpleUploadedFile("bad.dcm", samples.truncated())]
    reply = upload(web, pool, files, django_capture_on_commit_callbacks)
    operation = Operation.objects.get()
    assert reply.status_code == 302
    assert reply["Location"] == f"/operations/{operation.pk}/"
    assert not pool.images.exists()  # nothing imported inside the request
    assert (operation.status, operation.total) == ("queued", 2)
    assert task_queue.sent == [
        ("cases.tasks.import_into_pool", {"operation_pk": operation.pk}, "cpu")
    ]
    queued = web.get(reply["Location"]).content.decode()
    assert "Queued" in queued
    assert 'data-progress-url="/operations/' in queued
    assert f"/operations/{operation.pk}/" in web.get(f"/reference/{pool.pk}/").content.decode()

    task_queue.run()
    operation.refresh_from_db()
    assert (operation.status, operation.done, operation.total) == ("succeeded", 3, 3)
    assert pool.images.count() == 2
    page = web.get(reply["Location"]).content.decode()
    assert "2 imported · 0 duplicate(s) · 1 refused" in page
    assert "two.zip/a.dcm" in page
    assert "truncated" in page
    assert f'href="/reference/{pool.pk}/"' in page
    for _, path in operation.params["uploads"]:
        assert not default_storage.exists(path)  # the uploads are deleted once imported


def test_an_import_failing_part_way_keeps_nothing_and_says_why(
    login, educator, pool, task_queue, django_capture_on_commit_callbacks, monkeypatch
):
    web = login(educator)
    upload(web, pool, [two_images_in_a_zip()], django_capture_on_commit_callbacks)
    real_import_one = dicom_import.import_one
    calls, stored = [], []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("the storage is full")
        image = real_import_one(*args, **kwargs)
        stored.append(image.file.name)
        return image

    monkeypatch.setattr(dicom_import, "import_one", second_fails)
    task_queue.run()
    operation = Operation.objects.get()
    assert (operation.status, operation.error) == ("failed", "OSError: the storage is full")
    assert len(calls) == 2
    assert not pool.images.exists()
    assert len(stored) == 1
    assert not default_storage.exists(stored[0])  # the first image, stored, is gone again
    assert "OSError: the storage is full" in web.get(operation.get_absolute_url()).content.decode()


def test_a_repeated_delivery_of_a_finished_operation_does_nothing(
    login, educator, pool, task_queue, django_capture_on_commit_callbacks
):
    upload(login(educator), pool, [two_images_in_a_zip()], django_capture_on_commit_callbacks)
    operation = Operation.objects.get()
    task_queue.run()
    operation.enqueue()
    task_queue.run()
    operation.refresh_from_db()
    assert (operation.status, operation.attempts) == ("succeeded", 1)
    assert operation.result["summary"].startswith("2 imported · 0 duplicate(s)")


def test_a_file_over_the_limit_is_refused_without_being_stored(
    login, educator, pool, task_queue, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr("cases.reference.pool_import.MAX_FILE_BYTES", 100)
    files = [SimpleUploadedFile("big.dcm", samples.to_bytes(samples.dataset()))]
    upload(login(educator), pool, files, django_capture_on_commit_callbacks)
    operation = Operation.objects.get()
    assert operation.params["uploads"] == []
    task_queue.run()
    operation.refresh_from_db()
    assert operation.result["rows"] == [
        ["big.dcm", f"refused: {dicom_import.TOO_LARGE}", "refused"]
    ]


def test_an_operation_is_shown_only_to_whoever_asked_for_it(
    login, educator, pool, task_queue, django_capture_on_commit_callbacks
):
    from tests.factories import UserFactory

    upload(login(educator), pool, [two_images_in_a_zip()], django_capture_on_commit_callbacks)
    operation = Operation.objects.get()
    other = login(UserFactory(role="educator"))
    assert other.get(operation.get_absolute_url()).status_code == 404
    assert other.get(f"/operations/{operation.pk}/progress/").status_code == 404


def test_a_worker_failure_is_recorded_with_its_reason(educator):
    operation = Operation.objects.create(task="cases.tasks.x", title="t", requested_by=educator)

    def work(op):
        raise ValueError("no such pool")

    Operation.run(operation.pk, work)
    operation.refresh_from_db()
    assert (operation.status, operation.error) == ("failed", "ValueError: no such pool")
    assert operation.finished_at is not None
