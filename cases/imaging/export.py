"""Exporting a case as DICOM: a zip with a DICOMDIR, or C-STORE to a DICOM node.

Both carry every instance of every study of the case, SEG ground truth included. Sending
waits on the node, so the export page queues it as a background operation on the cpu queue
(``launch_send``); the task (``run_send``) reports each instance sent as progress.
"""

from __future__ import annotations

import io
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from pydicom import Dataset, dcmread
from pydicom.fileset import FileSet
from pynetdicom import AE
from pynetdicom.presentation import build_context

from cases.models import Instance, Operation, SyntheticPatient

SEND_TASK = "cases.tasks.send_to_node"


def case_instances(case: SyntheticPatient) -> QuerySet[Instance]:
    return Instance.objects.filter(series__study__patient=case).order_by(
        "series__study__timepoint", "series__series_number", "instance_number"
    )


def _datasets(case: SyntheticPatient) -> list[Dataset]:
    datasets = []
    for instance in case_instances(case):
        with instance.file.open("rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            datasets.append(dcmread(fh))
    return datasets


def export_zip(case: SyntheticPatient) -> bytes:
    """A zip of the case as DICOM media: the files and a DICOMDIR that indexes them."""
    fileset = FileSet()
    fileset.ID = case.patient_id[-16:].replace("-", "_").upper()
    for ds in _datasets(case):
        fileset.add(ds)
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder:
        fileset.write(folder)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


@dataclass(frozen=True)
class Node:
    """A DICOM node (PACS) that accepts C-STORE."""

    ae_title: str
    host: str
    port: int
    calling_ae_title: str = "GANTRY"

    @classmethod
    def configured(cls) -> Node | None:
        """The node from settings (GANTRY_PACS_AE/HOST/PORT), or None when none is set."""
        if not settings.GANTRY_PACS_HOST:
            return None
        return cls(
            settings.GANTRY_PACS_AE,
            settings.GANTRY_PACS_HOST,
            settings.GANTRY_PACS_PORT,
            settings.GANTRY_PACS_CALLING_AE,
        )


@dataclass(frozen=True)
class SendResult:
    sop_instance_uid: str
    sop_class_uid: str
    status: int | None  # the C-STORE status; None when the request got no answer
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == 0x0000

    def as_dict(self) -> dict[str, object]:
        return {
            "sop_instance_uid": self.sop_instance_uid,
            "sop_class_uid": self.sop_class_uid,
            "status": None if self.status is None else f"0x{self.status:04X}",
            "ok": self.ok,
            "detail": self.detail,
        }


def send_case(
    case: SyntheticPatient,
    node: Node,
    *,
    timeout: float = 30,
    progress: Callable[[int, int], None] | None = None,
) -> list[SendResult]:
    """C-STORE every instance of the case to ``node``; one result per instance.
    ``progress(sent, total)`` is called after each."""
    datasets = _datasets(case)
    ae = AE(ae_title=node.calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    contexts = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets}
    ae.requested_contexts = [build_context(sop, syntax) for sop, syntax in sorted(contexts)]
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
    if not assoc.is_established:
        return [_result(ds, None, "association with the node failed") for ds in datasets]
    results = []
    try:
        for ds in datasets:
            results.append(_store(assoc, ds))
            if progress is not None:
                progress(len(results), len(datasets))
    finally:
        assoc.release()
    return results


def launch_send(case: SyntheticPatient, node: Node, *, user: Any) -> Operation:
    return Operation.launch(
        task=SEND_TASK,
        title=f"Send {case.patient_id} to {node.ae_title}",
        user=user,
        params={"case": case.pk, "back": reverse("case-export", args=[case.pk])},
        total=case_instances(case).count(),
    )


def run_send(operation: Operation) -> dict[str, Any]:
    """The task's work: send the case to the node configured on the worker."""
    case = SyntheticPatient.objects.get(pk=operation.params["case"])
    node = Node.configured()
    if node is None:
        raise ValueError("no DICOM node configured (set GANTRY_PACS_HOST, _PORT and _AE)")
    results = send_case(case, node, progress=operation.record_progress)
    stored = sum(r.ok for r in results)
    return {
        "summary": f"{stored} of {len(results)} instance(s) stored on "
        f"{node.ae_title}@{node.host}:{node.port}",
        "node": f"{node.ae_title}@{node.host}:{node.port}",
        "results": [r.as_dict() for r in results],
        "rows": [
            [
                r.sop_instance_uid,
                f"{r.as_dict()['status'] or 'no answer'}: {r.detail}",
                "ok" if r.ok else "failed",
            ]
            for r in results
        ],
        "link": case.get_absolute_url(),
        "link_text": f"Back to {case.patient_id}",
    }


def _store(assoc: object, ds: Dataset) -> SendResult:
    try:
        status = assoc.send_c_store(ds)  # type: ignore[attr-defined]
    except (ValueError, RuntimeError) as exc:  # e.g. no accepted presentation context
        return _result(ds, None, str(exc))
    if not status:
        return _result(ds, None, "no response (timeout or aborted association)")
    code = int(status.Status)
    return _result(ds, code, "stored" if code == 0 else str(status.get("ErrorComment", "")))


def _result(ds: Dataset, status: int | None, detail: str) -> SendResult:
    return SendResult(str(ds.SOPInstanceUID), str(ds.SOPClassUID), status, detail)
