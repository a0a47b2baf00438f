"""Exporting a case: the DICOM zip and its DICOMDIR read by pydicom, and C-STORE received by a
real pynetdicom storage SCP started in the test."""

from __future__ import annotations

import io
import socket
import zipfile
from pathlib import Path

import pytest
from django.test import Client
from pydicom import dcmread
from pydicom.fileset import FileSet
from pynetdicom import AE, AllStoragePresentationContexts, evt

from cases.imaging.export import case_instances
from cases.models import Operation

SEG = "1.2.840.10008.5.1.4.1.1.66.4"


@pytest.fixture
def case(make_cases):
    return make_cases(1)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def storage_scp(settings):
    """A pynetdicom C-STORE SCP on a free port; the datasets it receives, by SOP UID."""
    received: dict[str, object] = {}

    def on_store(event):
        ds = event.dataset
        ds.file_meta = event.file_meta
        received[ds.SOPInstanceUID] = ds
        return 0x0000

    ae = AE(ae_title="TESTPACS")
    ae.supported_contexts = AllStoragePresentationContexts
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    settings.GANTRY_PACS_HOST, settings.GANTRY_PACS_PORT = "127.0.0.1", port
    settings.GANTRY_PACS_AE = "TESTPACS"
    yield received
    server.shutdown()


def test_zip_holds_every_instance_and_a_dicomdir(login, educator, case, tmp_path):
    response = login(educator).get(f"/cases/{case.pk}/export.zip")
    assert response.status_code == 200
    zipfile.ZipFile(io.BytesIO(response.content)).extractall(tmp_path)

    fileset = FileSet(dcmread(tmp_path / "DICOMDIR"))
    expected = set(case_instances(case).values_list("sop_instance_uid", flat=True))
    assert {instance.SOPInstanceUID for instance in fileset} == expected
    files = [p for p in Path(tmp_path).rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    read = [dcmread(p) for p in files]
    assert {ds.SOPInstanceUID for ds in read} == expected
    assert SEG in {ds.SOPClassUID for ds in read}
    for instance in fileset:  # every record points at a readable file
        assert instance.load().SOPInstanceUID == instance.SOPInstanceUID


def test_send_to_pacs_is_queued_and_reports_per_instance_status(
    login, educator, case, storage_scp, task_queue, django_capture_on_commit_callbacks
):
    web = login(educator)
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(f"/cases/{case.pk}/export/send/", HTTP_ACCEPT="application/json")
    assert response.status_code == 202
    assert storage_scp == {}  # nothing sent inside the request
    operation = Operation.objects.get(pk=response.json()["operation"])
    assert task_queue.sent == [("cases.tasks.send_to_node", {"operation_pk": operation.pk}, "cpu")]
    task_queue.run()
    progress = web.get(response.json()["progress_url"]).json()
    expected = set(case_instances(case).values_list("sop_instance_uid", flat=True))
    assert (progress["status"], progress["done"], progress["total"]) == (
        "succeeded",
        len(expected),
        len(expected),
    )
    results = progress["result"]["results"]
    assert {r["sop_instance_uid"] for r in results} == expected == set(storage_scp)
    assert all(r["ok"] and r["status"] == "0x0000" for r in results)
    assert any(ds.SOPClassUID == SEG for ds in storage_scp.values())


def test_send_reports_failure_when_the_node_is_down(
    login, educator, case, settings, task_queue, django_capture_on_commit_callbacks
):
    settings.GANTRY_PACS_HOST, settings.GANTRY_PACS_PORT = "127.0.0.1", free_port()
    web = login(educator)
    with django_capture_on_commit_callbacks(execute=True):
        reply = web.post(f"/cases/{case.pk}/export/send/")
    assert reply.status_code == 302
    assert task_queue.run() == 1
    page = web.get(reply["Location"])
    assert "association with the node failed" in page.content.decode()
    assert f"0 of {case_instances(case).count()} instance(s) stored" in page.content.decode()


def test_export_needs_an_educator(login, trainee, expert, case):
    for url in (f"/cases/{case.pk}/export/", f"/cases/{case.pk}/export.zip"):
        assert Client().get(url).status_code == 302
        assert login(trainee).get(url).status_code == 403
        assert login(expert).get(url).status_code == 403
    assert login(trainee).post(f"/cases/{case.pk}/export/send/").status_code == 403


def test_send_without_a_node_is_a_clear_400(login, educator, case, settings):
    settings.GANTRY_PACS_HOST = ""
    response = login(educator).post(
        f"/cases/{case.pk}/export/send/", HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert "GANTRY_PACS_HOST" in response.json()["error"]
