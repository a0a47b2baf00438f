"""Imports into a pool from its page, as background operations on the cpu queue.

The page stores the uploaded files through the storage API (workers may run on other hosts)
and records the operation; the task imports them (``import_files`` or, for a teaching file,
``import_teaching_file``), reporting each file judged as progress, and deletes the uploads
once it has finished. An import that fails part way removes the images it had stored, so a
failed operation leaves the pool as it was.
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from typing import Any

from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse

from cases.models import Operation, ReferenceImage, ReferencePool
from cases.reference.dicom_import import (
    MAX_FILE_BYTES,
    TOO_LARGE,
    ImportReport,
    count_entries,
    import_files,
)
from cases.reference.teaching_file_import import import_teaching_file

IMPORT_TASK = "cases.tasks.import_into_pool"


def launch_import(
    pool: ReferencePool, uploads: list[UploadedFile], *, teaching_file: bool, user: Any
) -> Operation:
    """Store the uploads and queue their import; a file over the size limit is refused here,
    without being stored."""
    folder = f"operations/uploads/{uuid.uuid4().hex}"
    stored, refused = [], []
    for index, upload in enumerate(uploads):
        if upload.size > MAX_FILE_BYTES:
            refused.append([upload.name, TOO_LARGE])
        else:
            stored.append([upload.name, default_storage.save(f"{folder}/{index}", upload)])
    what = "a teaching file" if teaching_file else f"{len(uploads)} file(s)"
    return Operation.launch(
        task=IMPORT_TASK,
        title=f"Import of {what} into {pool.name}",
        user=user,
        params={
            "pool": pool.pk,
            "teaching_file": teaching_file,
            "uploads": stored,
            "refused": refused,
            "back": reverse("reference-pool", args=[pool.pk]),
        },
        total=len(uploads),
    )


def run_import(operation: Operation) -> dict[str, Any]:
    """The task's work: import the stored uploads; returns the report as the result."""
    params = operation.params
    pool = ReferencePool.objects.get(pk=params["pool"])
    refused = [(name, reason) for name, reason in params["refused"]]
    report = ImportReport()

    def progress(so_far: ImportReport, total: int | None) -> None:
        nonlocal report
        report = so_far
        operation.record_progress(
            len(refused) + so_far.judged, None if total is None else len(refused) + total
        )

    try:
        with ExitStack() as stack:
            files = [
                (name, stack.enter_context(default_storage.open(path, "rb")))
                for name, path in params["uploads"]
            ]
            total = len(refused) + sum(count_entries(name, fh) for name, fh in files)
            operation.record_progress(len(refused), total)
            run = import_teaching_file if params["teaching_file"] else import_files
            report = run(pool, files, operation.requested_by, progress=progress)
    except BaseException:
        _remove(report.imported)
        raise
    finally:
        for _, path in params["uploads"]:
            default_storage.delete(path)
    report.refused[:0] = refused
    return _result(pool, report)


def _remove(images: list[ReferenceImage]) -> None:
    for image in images:
        image.file.delete(save=False)
        image.delete()


def _result(pool: ReferencePool, report: ImportReport) -> dict[str, Any]:
    rows = [[i.source_name, f"imported ({_size(i)})", "imported"] for i in report.imported]
    rows += [[name, "duplicate: already in this pool", "duplicate"] for name in report.duplicates]
    rows += [[name, f"refused: {reason}", "refused"] for name, reason in report.refused]
    return {
        "summary": f"{len(report.imported)} imported · {len(report.duplicates)} duplicate(s) · "
        f"{len(report.refused)} refused",
        "rows": rows,
        "link": reverse("reference-pool", args=[pool.pk]),
        "link_text": f"Open the pool {pool.name}",
    }


def _size(image: ReferenceImage) -> str:
    frames = f" x {image.frames}" if image.frames > 1 else ""
    return f"{image.modality}, {image.rows} x {image.columns}{frames}"
