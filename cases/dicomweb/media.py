"""Media types: Accept negotiation and multipart/related bodies (RFC 2387, PS3.18 8.7)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

CRLF = b"\r\n"


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``type/subtype`` and its parameters (lower-cased keys)."""

    media_type: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def is_any(self) -> bool:
        return self.media_type in ("*/*", "*")


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header, in the order given (quality values ignored)."""
    ranges = []
    for item in _split_outside_quotes(header or "*/*", ","):
        parts = _split_outside_quotes(item, ";")
        media_type = parts[0].strip().lower()
        if not media_type:
            continue
        params = {}
        for param in parts[1:]:
            name, _, value = param.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        ranges.append(MediaRange(media_type, params))
    return ranges or [MediaRange("*/*")]


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def content_type_params(header: str) -> tuple[str, dict[str, str]]:
    media = parse_accept(header)[0]
    return media.media_type, media.params


@dataclass(frozen=True)
class Part:
    content_type: str
    chunks: Iterable[bytes]  # the body, possibly streamed from storage
    size: int | None = None
    location: str = ""


def new_boundary() -> str:
    return uuid.uuid4().hex


def part_header(part: Part, boundary: str) -> bytes:
    lines = [f"--{boundary}", f"Content-Type: {part.content_type}"]
    if part.location:
        lines.append(f"Content-Location: {part.location}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def encode(parts: Iterable[Part], boundary: str) -> Iterator[bytes]:
    """The body of a multipart/related message, streamed part by part."""
    for part in parts:
        yield part_header(part, boundary)
        yield from part.chunks
        yield CRLF
    yield f"--{boundary}--".encode() + CRLF


def encoded_size(parts: list[Part], boundary: str) -> int | None:
    """The body length when every part's size is known, else None."""
    if any(part.size is None for part in parts):
        return None
    total = sum(len(part_header(part, boundary)) + part.size + 2 for part in parts)  # type: ignore[operator]
    return total + len(f"--{boundary}--") + 2


class MultipartError(ValueError):
    pass


def decode(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """(headers, content) of every part of a multipart body."""
    if not boundary:
        raise MultipartError("the Content-Type has no boundary parameter")
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise MultipartError("no parts found between the boundaries")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        chunk = chunk.removeprefix(CRLF).removesuffix(CRLF)
        if chunk.startswith(CRLF):  # a part without headers
            head, sep, content = b"", CRLF, chunk[2:]
        else:
            head, sep, content = chunk.partition(CRLF + CRLF)
        if not sep:
            raise MultipartError("a part has no blank line between its headers and body")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip():
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts


READ_BYTES = 1 << 20  # what iter_parts reads from the request at a time
MAX_HEADER_BYTES = 16 * 1024
SPOOL_BYTES = 1 << 20  # a part larger than this goes to a temporary file on disk


@dataclass
class StreamedPart:
    """One part of a multipart body read by ``iter_parts``: its headers, its content in a
    temporary file (at offset 0) or None when it was larger than allowed, and its size."""

    headers: dict[str, str]
    content: IO[bytes] | None
    size: int


class _Reader:
    """A byte stream read in chunks, with what was read but not used kept in front."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.buffer, self.eof = stream, b"", False

    def fill(self) -> bool:
        chunk = b"" if self.eof else self.stream.read(READ_BYTES)
        self.eof = not chunk
        self.buffer += chunk
        return bool(chunk)


def iter_parts(stream: IO[bytes], boundary: str, *, max_part_bytes: int) -> Iterator[StreamedPart]:
    """The parts of a multipart body read from ``stream`` as they arrive: each part's content
    goes to a temporary file, so a body is never held in memory whole (at most a chunk and a
    delimiter's length). A part over ``max_part_bytes`` is read past and given no content.
    Raises MultipartError for a body that is not multipart with this boundary; the caller
    closes each part's file."""
    if not boundary:
        raise MultipartError("the Content-Type has no boundary parameter")
    delimiter = CRLF + b"--" + boundary.encode()
    reader = _Reader(stream)
    reader.buffer = CRLF  # the body starts with a delimiter that has no CRLF before it
    if not _skip_to(reader, delimiter):
        raise MultipartError("no parts found between the boundaries")
    while True:
        while len(reader.buffer) < 2 and reader.fill():
            pass
        if reader.buffer.startswith(b"--"):
            return  # the closing delimiter
        headers = _part_headers(reader)
        content, size = _part_content(reader, delimiter, max_part_bytes)
        yield StreamedPart(headers, content, size)


def _skip_to(reader: _Reader, delimiter: bytes) -> bool:
    """Drop everything up to and including ``delimiter``; False when the stream ends first."""
    while True:
        found = reader.buffer.find(delimiter)
        if found >= 0:
            reader.buffer = reader.buffer[found + len(delimiter) :]
            return True
        reader.buffer = reader.buffer[-(len(delimiter) - 1) :]
        if not reader.fill():
            return False


def _part_headers(reader: _Reader) -> dict[str, str]:
    while (end := reader.buffer.find(CRLF + CRLF)) < 0:
        if len(reader.buffer) > MAX_HEADER_BYTES or not reader.fill():
            raise MultipartError("a part has no blank line between its headers and body")
    head, reader.buffer = reader.buffer[:end], reader.buffer[end + 4 :]
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip():
            headers[name.strip().lower()] = value.strip()
    return headers


def _part_content(
    reader: _Reader, delimiter: bytes, max_part_bytes: int
) -> tuple[IO[bytes] | None, int]:
    """The part's content up to the next delimiter, in a temporary file, and its size."""
    out: IO[bytes] | None = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    size = 0
    keep = len(delimiter) - 1
    while True:
        found = reader.buffer.find(delimiter)
        ready = reader.buffer[:found] if found >= 0 else reader.buffer[:-keep]
        size += len(ready)
        if out is not None and size > max_part_bytes:
            out.close()
            out = None
        if out is not None:
            out.write(ready)
        if found >= 0:
            reader.buffer = reader.buffer[found + len(delimiter) :]
            break
        reader.buffer = reader.buffer[len(ready) :]
        if not reader.fill():
            if out is not None:
                out.close()
            raise MultipartError("the body ends inside a part (no closing boundary)")
    if out is not None:
        out.seek(0)
    return out, size
