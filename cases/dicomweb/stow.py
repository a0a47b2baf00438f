"""STOW-RS (PS3.18 10.5): store instances into a reference pool, with the import's checks.

Each part goes through ``import_files`` on its own, so the reply can say what became of every
part: stored (de-identified, hence Warning Reason B000 "coercion of data elements", with the
new UID and its RetrieveURL), or failed with a Failure Reason and a ``Warning`` header giving
the import's reason in words.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import IO, Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from pydicom import Dataset

from cases.dicomweb import media
from cases.dicomweb.auth import error
from cases.dicomweb.results import instance_url, to_json
from cases.models import ReferencePool
from cases.reference.dicom_import import MAX_FILE_BYTES, import_files, read_header

# A request is read part by part into temporary files (media.iter_parts): its size bounds
# the disk a request may take while one part is stored, not the memory it takes.
MAX_BODY_BYTES = 32 * MAX_FILE_BYTES
COERCED = 0xB000  # warning: data elements coerced (de-identification)
CANNOT_UNDERSTAND = 0xC000
DUPLICATE = 0x0111
WRONG_STUDY = 0xA900  # data set does not match the study of the request


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _peek(content: IO[bytes] | None) -> Dataset:
    """SOP class, instance and study of a part, as far as they can be read."""
    if content is None:
        return Dataset()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read_header(content, ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"])
    except Exception:  # an unreadable part is reported by the import with its reason
        return Dataset()
    finally:
        content.seek(0)


def _failed(header: Dataset, reason: int) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = header.get("SOPClassUID", "")
    item.ReferencedSOPInstanceUID = header.get("SOPInstanceUID", "")
    item.FailureReason = reason
    return item


def store(request: HttpRequest, *, pool: int | None, study: str | None) -> HttpResponse:
    if pool is None:
        return error(
            400, "STOW-RS stores into a reference pool: POST to /dicomweb/pools/<id>/studies"
        )
    if not request.user.has_perm("cases.add_referenceimage"):
        return error(403, "only educators and admins may store instances")
    target = get_object_or_404(ReferencePool, pk=pool)
    params = {key.lower(): value for key, value in request.content_params.items()}
    if request.content_type != "multipart/related" or params.get("type", "application/dicom").strip(
        '"'
    ) not in ("application/dicom",):
        return error(415, 'send multipart/related; type="application/dicom"')
    if _declared_length(request) > MAX_BODY_BYTES:
        return error(413, f"a request may carry at most {MAX_BODY_BYTES // 2**20} MiB")
    boundary = params.get("boundary", "").strip('"')
    parts = media.iter_parts(request, boundary, max_part_bytes=MAX_FILE_BYTES)
    return _store_parts(request, target, parts, study)


class _Outcome:
    """What became of each part, for the STOW-RS reply."""

    def __init__(self) -> None:
        self.stored: list[Dataset] = []
        self.failed: list[Dataset] = []
        self.notes: list[str] = []

    def fail(self, header: Dataset, reason: int, note: str) -> None:
        self.failed.append(_failed(header, reason))
        self.notes.append(note)


def _store_parts(
    request: HttpRequest,
    pool: ReferencePool,
    parts: Iterator[media.StreamedPart],
    study: str | None,
) -> HttpResponse:
    """Store the parts one by one as they are read; a body that breaks off after some parts
    keeps those and says where it broke."""
    base = request.build_absolute_uri(reverse("dicomweb-pool-root", args=[pool.pk])).rstrip("/")
    outcome = _Outcome()
    number = 0
    try:
        for number, part in enumerate(parts, start=1):
            try:
                _store_part(request, pool, part, f"part {number}", study, base, outcome)
            finally:
                if part.content is not None:
                    part.content.close()
    except media.MultipartError as exc:
        if number == 0:
            return error(400, str(exc))
        outcome.notes.append(f"after part {number}: {exc}")
    return _reply(outcome.stored, outcome.failed, outcome.notes, parts_count=number)


def _store_part(
    request: HttpRequest,
    pool: ReferencePool,
    part: media.StreamedPart,
    name: str,
    study: str | None,
    base: str,
    outcome: _Outcome,
) -> None:
    header = _peek(part.content)
    part_type = part.headers.get("content-type", "application/dicom").split(";")[0].strip()
    if part_type != "application/dicom":
        note = f"{name}: {part_type} parts are not stored (send application/dicom)"
        outcome.fail(header, CANNOT_UNDERSTAND, note)
        return
    if part.content is None:
        limit = MAX_FILE_BYTES // 2**20
        outcome.fail(header, CANNOT_UNDERSTAND, f"{name}: larger than the {limit} MiB limit")
        return
    if study and header.get("StudyInstanceUID") not in (None, study):
        outcome.fail(header, WRONG_STUDY, f"{name}: not in study {study}")
        return
    report = import_files(pool, [(name, part.content)], request.user)
    for image in report.imported:
        outcome.stored.append(_referenced(image, base))
    for _, reason in report.refused:
        outcome.fail(header, CANNOT_UNDERSTAND, f"{name}: {reason}")
    if report.duplicates:
        outcome.fail(header, DUPLICATE, f"{name}: already in pool {pool.name}")


def _referenced(image: Any, base: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = image.sop_class_uid
    item.ReferencedSOPInstanceUID = image.sop_instance_uid
    item.RetrieveURL = instance_url(
        {
            "study_uid": image.study_uid,
            "series_uid": image.series_uid,
            "sop_uid": image.sop_instance_uid,
        },
        base,
    )
    item.WarningReason = COERCED
    return item


def _reply(
    stored: list[Dataset], failed: list[Dataset], notes: list[str], *, parts_count: int
) -> HttpResponse:
    reply = Dataset()
    if stored:
        reply.ReferencedSOPSequence = stored
    if failed:
        reply.FailedSOPSequence = failed
    status = 200 if not failed else 202 if stored else 409
    response = HttpResponse(
        json.dumps(to_json(reply)), status=status, content_type="application/dicom+json"
    )
    if notes:
        response["Warning"] = ", ".join(
            f'299 gantry "{note.replace(chr(34), chr(39))}"' for note in notes
        )
    return response
