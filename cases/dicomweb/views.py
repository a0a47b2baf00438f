"""DICOMweb endpoints. Thin: the catalog finds instances, results/pixels/media shape replies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.core.files.storage import default_storage
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from pydicom.uid import UID, ExplicitVRLittleEndian

from cases.dicomweb import media, pixels, results, stow
from cases.dicomweb.auth import dicomweb_auth, error
from cases.dicomweb.catalog import Matcher, QueryError, group, instance_rows, locate
from cases.dicomweb.query import parse_query
from cases.models import AccessToken, ReferencePool

DICOM_JSON = "application/dicom+json"
CHUNK = 256 * 1024
LEVEL_KEY = {"study": "study_uid", "series": "series_uid", "instance": "sop_uid"}
# Media type of a frame kept in its stored (compressed) transfer syntax.
FRAME_MEDIA = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}


def _scope(request: HttpRequest, pool: int | None) -> tuple[ReferencePool | None, str]:
    """The pool a scoped URL names (404 for those who may not see it) and the base URL."""
    if pool is None:
        return None, request.build_absolute_uri(reverse("dicomweb-root")).rstrip("/")
    found = get_object_or_404(ReferencePool.objects.visible_to(request.user), pk=pool)
    return found, request.build_absolute_uri(reverse("dicomweb-pool-root", args=[pool])).rstrip("/")


def _path_matchers(study: str | None, series: str | None, sop: str | None) -> list[Matcher]:
    pairs = (("study_uid", study), ("series_uid", series), ("sop_uid", sop))
    return [Matcher(alias, "uid", value) for alias, value in pairs if value]


def _json(payload: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(payload), status=status, content_type=DICOM_JSON)


# ---- QIDO-RS ---------------------------------------------------------------------------------


def search(
    request: HttpRequest,
    level: str,
    *,
    pool: int | None = None,
    study: str | None = None,
    series: str | None = None,
) -> HttpResponse:
    scope, base = _scope(request, pool)
    try:
        query = parse_query(request.GET)
        rows = instance_rows(
            request.user, _path_matchers(study, series, None) + query.matchers, scope
        )
    except QueryError as exc:
        return error(400, str(exc))
    groups = group(rows, LEVEL_KEY[level])[query.offset : query.offset + query.limit]
    build = {
        "study": results.study_dataset,
        "series": results.series_dataset,
        "instance": lambda g, b: results.instance_dataset(g[0], b),
    }[level]
    payload = []
    for rows_of_group in groups:
        ds = build(rows_of_group, base)
        if query.includefields:
            results.add_fields(
                ds, results.read_header(rows_of_group[0]), query.includefields, level
            )
        payload.append(results.to_json(ds))
    response = _json(payload)
    for warning in query.warnings:
        response.headers.setdefault("Warning", f'299 gantry "{warning}"')
    return response


# ---- WADO-RS ---------------------------------------------------------------------------------


def _locate(
    request: HttpRequest, pool: int | None, study: str, series: str | None, sop: str | None
) -> tuple[list[dict[str, Any]], str]:
    """The files a retrieval path names that the user may reach (404 when none), and the base
    URL. One query: see ``catalog.locate``."""
    scope, base = _scope(request, pool)
    rows = locate(request.user, study, series, sop, scope)
    if not rows:
        raise Http404("no such study, series or instance")
    return rows, base


def _file_chunks(name: str) -> Iterator[bytes]:
    with default_storage.open(name, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def _wanted_syntax(accept: str | None) -> str | None:
    """The transfer syntax an application/dicom Accept asks for ('*' = as stored)."""
    for option in media.parse_accept(accept):
        if option.is_any:
            return ExplicitVRLittleEndian
        kind = option.params.get("type", "application/dicom")
        if option.media_type in ("multipart/related", "application/dicom") and kind in (
            "application/dicom",
            "application/*",
        ):
            return option.params.get("transfer-syntax", ExplicitVRLittleEndian)
    return None


def _dicom_part(row: dict[str, Any], wanted: str, base: str) -> media.Part | None:
    stored = row["transfer_syntax"]
    location = results.instance_url(row, base)
    if wanted in ("*", stored):
        content_type = f"application/dicom; transfer-syntax={stored}"
        return media.Part(content_type, _file_chunks(row["file"]), row["size"], location)
    if wanted == ExplicitVRLittleEndian:
        with default_storage.open(row["file"], "rb") as fh:
            data = pixels.to_explicit_little(pixels.load(fh.read()))
        content_type = f"application/dicom; transfer-syntax={wanted}"
        return media.Part(content_type, [data], len(data), location)
    return None


def _multipart(parts: list[media.Part], part_type: str) -> HttpResponse:
    boundary = media.new_boundary()
    response = StreamingHttpResponse(
        media.encode(parts, boundary),
        content_type=f'multipart/related; type="{part_type}"; boundary={boundary}',
    )
    size = media.encoded_size(parts, boundary)
    if size is not None:
        response["Content-Length"] = str(size)
    response["Cache-Control"] = "private, max-age=3600"
    return response


def retrieve(
    request: HttpRequest,
    *,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    pool: int | None = None,
) -> HttpResponse:
    rows, base = _locate(request, pool, study, series, sop)
    wanted = _wanted_syntax(request.headers.get("Accept"))
    if wanted is None:
        return error(406, 'accepted: multipart/related; type="application/dicom"')
    parts = [_dicom_part(row, wanted, base) for row in rows]
    if any(part is None for part in parts):
        return error(
            406,
            f"cannot provide transfer syntax {wanted}; ask for * (as stored) or "
            f"{ExplicitVRLittleEndian}",
        )
    return _multipart(parts, "application/dicom")  # type: ignore[arg-type]


def retrieve_metadata(
    request: HttpRequest,
    *,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    pool: int | None = None,
) -> HttpResponse:
    rows, base = _locate(request, pool, study, series, sop)
    return _json([results.metadata(row, base) for row in rows])


def _parse_frames(text: str) -> list[int]:
    try:
        frames = [int(item) for item in text.split(",")]
    except ValueError:
        raise pixels.FrameError("frames must be a comma-separated list of numbers") from None
    return frames


def _frame_mode(accept: str | None, stored: str) -> tuple[str, str] | None:
    """(``native`` or ``stored``, part content type) for a frames Accept header."""
    compressed = UID(stored).is_compressed
    native = f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
    for option in media.parse_accept(accept):
        kind = "*/*" if option.is_any else option.params.get("type", "application/octet-stream")
        syntax = option.params.get("transfer-syntax", "")
        if kind in ("application/octet-stream", "*/*"):
            if compressed and syntax in ("*", stored):
                return "stored", f"application/octet-stream; transfer-syntax={stored}"
            if syntax in ("", "*", ExplicitVRLittleEndian):
                return "native", native
        elif compressed and kind == FRAME_MEDIA.get(stored) and syntax in ("", "*", stored):
            return "stored", f"{kind}; transfer-syntax={stored}"
    return None


def retrieve_frames(
    request: HttpRequest, *, study: str, series: str, sop: str, frames: str, pool: int | None = None
) -> HttpResponse:
    rows, base = _locate(request, pool, study, series, sop)
    row = rows[0]
    mode = _frame_mode(request.headers.get("Accept"), row["transfer_syntax"])
    if mode is None:
        return error(
            406,
            'accepted: multipart/related; type="application/octet-stream" '
            "(transfer-syntax absent, * or as stored)",
        )
    with default_storage.open(row["file"], "rb") as fh:
        ds = pixels.load(fh.read())
    try:
        numbers = _parse_frames(frames)
        data = (pixels.stored_frames if mode[0] == "stored" else pixels.native_frames)(ds, numbers)
    except pixels.FrameError as exc:
        return error(400, str(exc))
    location = results.instance_url(row, base)
    parts = [
        media.Part(mode[1], [frame], len(frame), f"{location}/frames/{n}")
        for n, frame in zip(numbers, data, strict=True)
    ]
    return _multipart(parts, mode[1].split(";")[0])


def retrieve_rendered(
    request: HttpRequest,
    *,
    study: str,
    series: str,
    sop: str,
    frames: str = "1",
    pool: int | None = None,
) -> HttpResponse:
    rows, _base = _locate(request, pool, study, series, sop)
    wanted = None
    for option in media.parse_accept(request.headers.get("Accept")):
        if option.is_any or option.media_type in ("image/*", "image/jpeg"):
            wanted = "image/jpeg"
        elif option.media_type == "image/png":
            wanted = "image/png"
        if wanted:
            break
    if wanted is None:
        return error(406, "accepted: image/jpeg, image/png")
    try:
        numbers = _parse_frames(frames)
        if len(numbers) != 1:
            raise pixels.FrameError("rendered returns one frame")
        with default_storage.open(rows[0]["file"], "rb") as fh:
            body = pixels.rendered(pixels.load(fh.read()), numbers[0], wanted)
    except pixels.FrameError as exc:
        return error(400, str(exc))
    response = HttpResponse(body, content_type=wanted)
    response["Cache-Control"] = "private, max-age=3600"
    return response


# ---- resources: one URL, GET (search or retrieve) and POST (store) --------------------------


def _methods(request: HttpRequest, allowed: tuple[str, ...]) -> HttpResponse | None:
    if request.method not in allowed:
        return HttpResponseNotAllowed(allowed)
    return None


@dicomweb_auth
def studies(request: HttpRequest, pool: int | None = None) -> HttpResponse:
    if request.method == "POST":
        return stow.store(request, pool=pool, study=None)
    return _methods(request, ("GET", "HEAD", "POST")) or search(request, "study", pool=pool)


@dicomweb_auth
def study(request: HttpRequest, study: str, pool: int | None = None) -> HttpResponse:
    if request.method == "POST":
        return stow.store(request, pool=pool, study=study)
    return _methods(request, ("GET", "HEAD", "POST")) or retrieve(request, study=study, pool=pool)


def get_only(view: Any) -> Any:
    """A GET-only DICOMweb endpoint: authenticated, 405 for other methods."""

    @dicomweb_auth
    def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return _methods(request, ("GET", "HEAD")) or view(request, **kwargs)

    wrapper.__name__ = view.__name__
    return wrapper


study_series = get_only(lambda request, **kw: search(request, "series", **kw))
all_series = get_only(lambda request, **kw: search(request, "series", **kw))
instances = get_only(lambda request, **kw: search(request, "instance", **kw))
series = get_only(retrieve)
instance = get_only(retrieve)
metadata = get_only(retrieve_metadata)
frames = get_only(retrieve_frames)
rendered = get_only(retrieve_rendered)


def token_page(request: HttpRequest) -> HttpResponse:
    """The user's DICOMweb token (for an external viewer); POST makes a new one. Only its
    digest is kept, so the key is shown once, on the page that answers the POST."""
    key = AccessToken.issue(request.user) if request.method == "POST" else None
    context = {
        "key": key,
        "token": AccessToken.objects.filter(user=request.user).first(),
        "base": request.build_absolute_uri(reverse("dicomweb-root")).rstrip("/"),
    }
    return render(request, "cases/reference_dicomweb.html", context)
