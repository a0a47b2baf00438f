"""Media types: Accept negotiation and multipart/related bodies (RFC 2387, PS3.18 8.7)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

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
