"""Every file of the pydicom-data corpus (68 files: every transfer syntax pydicom reads, big
endian, colour, multi-frame, broken ones) stored by STOW-RS into a pool, then each stored
instance retrieved by WADO-RS in its default form (Explicit VR Little Endian) and as stored:
no answer is a server error, and every default retrieval is a DICOM file pydicom reads with
the pixels the stored file holds. About 40 s of one core, most of it decoding the corpus's
120-frame colour JPEG on import and for the default retrieval."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import data_store
import pytest
from django.test import Client
from pydicom import dcmread
from pydicom.pixels import pixel_array

from cases.dicomweb import media
from cases.models import AccessToken, ReferenceImage, ReferencePool

CORPUS = sorted((Path(data_store.__file__).parent / "data").glob("*.dcm"))
BIG_ENDIAN = "1.2.840.10008.1.2.2"


def stow(web: Client, pool: ReferencePool, files: list[Path]) -> int:
    boundary = media.new_boundary()
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + path.read_bytes()
        + b"\r\n"
        for path in files
    )
    reply = web.post(
        f"/dicomweb/pools/{pool.pk}/studies",
        body + f"--{boundary}--\r\n".encode(),
        content_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
    )
    return reply.status_code


def parts(reply) -> list[bytes]:
    boundary = reply["Content-Type"].rsplit("boundary=", 1)[1]
    return [body for _, body in media.decode(b"".join(reply.streaming_content), boundary)]


def read(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(io.BytesIO(data))


def by_pool(files: list[Path]) -> list[list[Path]]:
    """The files in groups without a repeated SOP Instance UID (the corpus holds one image in
    several transfer syntaxes; a pool keeps one copy of an image)."""
    groups: list[list[Path]] = []
    seen: dict[str, int] = {}
    for path in files:
        try:
            uid = str(read_header(path).get("SOPInstanceUID", path.name))
        except Exception:  # an unreadable file: the import says why
            uid = path.name
        index = seen[uid] = seen.get(uid, -1) + 1
        if index == len(groups):
            groups.append([])
        groups[index].append(path)
    return groups


def read_header(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(path, stop_before_pixels=True, force=True)


@pytest.mark.django_db
def test_the_corpus_is_stored_and_retrieved_without_a_server_error(educator):
    assert len(CORPUS) == 68
    web = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.issue(educator)}")
    web.raise_request_exception = False
    pools = []
    for k, files in enumerate(by_pool(CORPUS)):
        pools.append(ReferencePool.objects.create(name=f"pydicom-data {k}"))
        codes = [stow(web, pools[-1], files[i : i + 8]) for i in range(0, len(files), 8)]
        assert max(codes) < 500, codes
    stored = list(ReferenceImage.objects.filter(pool__in=pools))
    # Refused, with their reasons: no preamble, a SOP Instance UID of hex, a truncated file.
    assert len(stored) == 65
    big_endian = 0
    for image in stored:
        url = (
            f"/dicomweb/pools/{image.pool_id}/studies/{image.study_uid}/series/"
            f"{image.series_uid}/instances/{image.sop_instance_uid}"
        )
        default = web.get(url, HTTP_ACCEPT='multipart/related; type="application/dicom"')
        as_stored = web.get(
            url, HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=*'
        )
        assert (default.status_code, as_stored.status_code) == (200, 200), image.source_name
        (little,) = parts(default)
        (original,) = parts(as_stored)
        assert len(original) == image.size, image.source_name
        converted, kept = read(little), read(original)
        assert converted.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        last = image.frames - 1  # the first and the last frame: a 120-frame file takes seconds
        for frame in {0, last}:
            same = pixel_array(converted, index=frame) == pixel_array(kept, index=frame)
            assert same.all(), (image.source_name, frame)
        big_endian += image.transfer_syntax_uid == BIG_ENDIAN
    assert big_endian == 11
