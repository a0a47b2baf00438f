"""STOW-RS reads a request part by part into temporary files: memory does not grow with the
body, parts split anywhere across reads are found, an oversized part fails alone."""

from __future__ import annotations

import io
import tracemalloc

import pytest
from django.test import Client
from pydicom import dcmread

from cases.dicomweb import media
from cases.models import AccessToken, ReferencePool
from tests.cases import dicom_samples as samples

BOUNDARY = "d3b07384d113edec49eaa6238ad5ff00"


class LazyBody(io.RawIOBase):
    """A multipart body of ``n`` parts of ``size`` bytes each, made as it is read."""

    def __init__(self, n: int, size: int) -> None:
        self.pieces = iter(self._pieces(n, size))
        self.pending = b""

    @staticmethod
    def _pieces(n: int, size: int):
        block = bytes(range(256)) * 4096  # 1 MiB
        for k in range(n):
            yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            left = size
            while left:
                yield block[: min(left, len(block))]
                left -= min(left, len(block))
            yield f"\r\n{'--' + BOUNDARY + '--' if k == n - 1 else ''}".encode()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while len(self.pending) < n:
            piece = next(self.pieces, None)
            if piece is None:
                break
            self.pending += piece
        out, self.pending = self.pending[:n], self.pending[n:]
        return out


def test_memory_does_not_grow_with_the_body():
    tracemalloc.start()
    try:
        sizes = []
        for part in media.iter_parts(LazyBody(12, 6 * 2**20 + 7), BOUNDARY, max_part_bytes=2**30):
            sizes.append(part.size)
            assert part.content.read(3) == b"\x00\x01\x02"
            part.content.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sizes == [6 * 2**20 + 7] * 12  # 72 MiB read
    assert peak < 8 * 2**20, peak


@pytest.mark.parametrize("read_bytes", [1, 7, 64, 4096])
def test_delimiters_split_across_reads_are_found(monkeypatch, read_bytes):
    monkeypatch.setattr(media, "READ_BYTES", read_bytes)
    body = (
        f"preamble\r\n--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + b"one\r\n--not-the-boundary"
        + f"\r\n--{BOUNDARY}\r\n\r\ntwo\r\n--{BOUNDARY}--\r\n".encode()
    )
    parts = [
        (part.headers, part.content.read())
        for part in media.iter_parts(io.BytesIO(body), BOUNDARY, max_part_bytes=100)
    ]
    assert parts == [
        ({"content-type": "application/dicom"}, b"one\r\n--not-the-boundary"),
        ({}, b"two"),
    ]


@pytest.mark.django_db
def test_an_oversized_part_fails_alone(educator, monkeypatch):
    from cases.dicomweb import stow

    pool = ReferencePool.objects.create(name="real")
    good, big = samples.to_bytes(samples.dataset()), samples.to_bytes(samples.dataset())
    monkeypatch.setattr(stow, "MAX_FILE_BYTES", len(good) + 10)
    big += b"\x00" * 100  # trailing padding: larger than the limit
    body = b"".join(
        f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
        for data in (big, good)
    )
    reply = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.issue(educator)}").post(
        f"/dicomweb/pools/{pool.pk}/studies",
        body + f"--{BOUNDARY}--\r\n".encode(),
        content_type=f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
    )
    assert reply.status_code == 202
    assert "part 1: larger than the 0 MiB limit" in reply["Warning"]
    assert pool.images.count() == 1


@pytest.mark.django_db
def test_a_deflate_bomb_is_refused_without_being_inflated_whole(educator, settings):
    """The part is named in the reply from its first inflated MiB, and the import stops
    inflating at the limit: the request's Python allocations stay far below the bomb's
    64 MiB (reading the reply's UIDs with pydicom inflated it whole)."""
    settings.GANTRY_MAX_DECODED_BYTES = 8 * 2**20
    pool = ReferencePool.objects.create(name="real")
    bomb = samples.deflate_bomb(64 * 2**20)
    body = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + bomb
    web = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.issue(educator)}")
    tracemalloc.start()
    try:
        reply = web.post(
            f"/dicomweb/pools/{pool.pk}/studies",
            body + f"\r\n--{BOUNDARY}--\r\n".encode(),
            content_type=f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.status_code == 409
    assert "inflates to more than 8 MiB" in reply["Warning"]
    (failed,) = reply.json()["00081198"]["Value"]
    meta = dcmread(io.BytesIO(bomb), stop_before_pixels=True).file_meta
    assert failed["00081155"]["Value"] == [meta.MediaStorageSOPInstanceUID]
    assert peak < 24 * 2**20, f"{peak / 2**20:.0f} MiB"
    assert not pool.images.exists()
