"""STOW-RS (PS3.18 10.5): store instances into a reference pool, with the import's checks.

Each part goes through ``import_files`` on its own, so the reply can say what became of every
part: stored (de-identified, hence Warning Reason B000 "coercion of data elements", with the
new UID and its RetrieveURL), or failed with a Failure Reason and a ``Warning`` header giving
the import's reason in words.
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from pydicom import Dataset, dcmread

from cases.dicomweb import media
from cases.dicomweb.auth import error
from cases.dicomweb.results import instance_url, to_json
from cases.models import ReferencePool
from cases.reference.dicom_import import MAX_FILE_BYTES, import_files

MAX_BODY_BYTES = 2 * MAX_FILE_BYTES
COERCED = 0xB000  # warning: data elements coerced (de-identification)
CANNOT_UNDERSTAND = 0xC000
DUPLICATE = 0x0111
WRONG_STUDY = 0xA900  # data set does not match the study of the request


def _read_body(request: HttpRequest) -> bytes:
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > MAX_BODY_BYTES:
        raise ValueError("too large")
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ValueError("too large")
    return body


def _peek(data: bytes) -> Dataset:
    """SOP class, instance and study of a part, as far as they can be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dcmread(
                io.BytesIO(data),
                force=data[:2] == b"\x02\x00",  # file meta without a preamble
                stop_before_pixels=True,
                specific_tags=["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"],
            )
    except Exception:  # an unreadable part is reported by the import with its reason
        return Dataset()


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
    try:
        body = _read_body(request)
    except ValueError:
        return error(413, f"a request may carry at most {MAX_BODY_BYTES // 2**20} MiB")
    try:
        parts = media.decode(body, params.get("boundary", "").strip('"'))
    except media.MultipartError as exc:
        return error(400, str(exc))
    return _store_parts(request, target, parts, study)


def _store_parts(
    request: HttpRequest,
    pool: ReferencePool,
    parts: list[tuple[dict[str, str], bytes]],
    study: str | None,
) -> HttpResponse:
    base = request.build_absolute_uri(reverse("dicomweb-pool-root", args=[pool.pk])).rstrip("/")
    stored: list[Dataset] = []
    failed: list[Dataset] = []
    notes: list[str] = []
    for number, (headers, data) in enumerate(parts, start=1):
        name = f"part {number}"
        header = _peek(data)
        part_type = headers.get("content-type", "application/dicom").split(";")[0].strip()
        if part_type != "application/dicom":
            failed.append(_failed(header, CANNOT_UNDERSTAND))
            notes.append(f"{name}: {part_type} parts are not stored (send application/dicom)")
            continue
        if study and header.get("StudyInstanceUID") not in (None, study):
            failed.append(_failed(header, WRONG_STUDY))
            notes.append(f"{name}: not in study {study}")
            continue
        report = import_files(pool, [(name, data)], request.user)
        for image in report.imported:
            stored.append(_referenced(image, base))
        for _, reason in report.refused:
            failed.append(_failed(header, CANNOT_UNDERSTAND))
            notes.append(f"{name}: {reason}")
        if report.duplicates:
            failed.append(_failed(header, DUPLICATE))
            notes.append(f"{name}: already in pool {pool.name}")
    return _reply(stored, failed, notes, parts_count=len(parts))


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
