"""Importing real DICOM into a reference pool: validate, de-identify, store, report.

Every file is judged on its own: a file that cannot be used is refused with a reason a person
can act on, and the others are kept. A stored file always has its row and a row always has its
file (the file is written first and removed again if the row cannot be committed). Zip archives
are expanded, one level deep.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import re
import struct
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from pydicom import Dataset, dcmread
from pydicom.datadict import dictionary_VR
from pydicom.encaps import generate_fragmented_frames
from pydicom.errors import InvalidDicomError
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.pixels import iter_pixels
from pydicom.pixels.utils import _get_jpg_parameters
from pydicom.tag import Tag
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
)

from cases.models import ReferenceImage, ReferencePool
from cases.reference.deidentify import deidentify

# One file as received, and its pixel data once decoded (rows x columns x frames x samples x
# bits, as its header declares them, checked before anything is decoded). Together they
# bound what one import holds in memory: the file, its parsed copy, one decoded frame.
MAX_FILE_BYTES = 128 * 2**20
TOO_LARGE = f"larger than the {MAX_FILE_BYTES // 2**20} MiB limit for one file"
DEFLATED = "1.2.840.10008.1.2.1.99"
INFLATE_CHUNK = 2**20  # bytes read, and at most inflated, at a time
INFLATE_IN_MEMORY = 16 * 2**20  # an inflated data set beyond this goes to a temporary file
HEADER_BYTES = 2**20  # what is inflated of a deflated data set to read its header
MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_BYTES = 4 * 2**30  # uncompressed total of one archive
UNDEFINED_LENGTH = 0xFFFFFFFF
JPEG_FAMILY = {*JPEGTransferSyntaxes, *JPEGLSTransferSyntaxes, *JPEG2000TransferSyntaxes}
J2K_START = b"\xff\x4f\xff\x51"  # SOC and SIZ markers
# Attributes the pixel data is interpreted with: a wrong VR here makes the image unreadable.
PIXEL_MODULE = (
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
)
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
UID_FORM = re.compile(r"[0-9]+(\.[0-9]+)*")  # what a DICOMweb URL can name

FileInput = tuple[str, bytes | IO[bytes]]


class Refused(Exception):
    """A file that cannot be imported; ``reason`` says why, for the person who sent it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Duplicate(Exception):
    """The pool already holds this image (same SOP Instance UID as received)."""


@dataclass
class ImportReport:
    imported: list[ReferenceImage] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def judged(self) -> int:
        return len(self.imported) + len(self.refused) + len(self.duplicates)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": [
                {
                    "name": image.source_name,
                    "id": image.pk,
                    "sop_instance_uid": image.sop_instance_uid,
                }
                for image in self.imported
            ],
            "refused": [{"name": name, "reason": reason} for name, reason in self.refused],
            "duplicates": list(self.duplicates),
        }


# Called after each file is judged, with the report so far and, when known, the number of
# files there are to judge.
Progress = Callable[[ImportReport, int | None], None]


def import_files(
    pool: ReferencePool,
    files: Iterable[FileInput],
    user: Any,
    *,
    origin: str = ReferenceImage.Origin.IMPORT,
    progress: Progress | None = None,
) -> ImportReport:
    """Import every file (zip archives expanded) into ``pool``; see the module docstring."""
    report = ImportReport()
    for name, data in expand(files):
        if isinstance(data, Refused):
            report.refused.append((name, data.reason))
        else:
            try:
                report.imported.append(import_one(pool, name, data, user, origin=origin))
            except Refused as exc:
                report.refused.append((name, exc.reason))
            except Duplicate:
                report.duplicates.append(name)
        if progress is not None:
            progress(report, None)
    return report


def count_entries(name: str, source: IO[bytes]) -> int:
    """How many files ``expand`` makes of one seekable upload: a zip's members, else one."""
    head = source.read(4)
    source.seek(0)
    if head != b"PK\x03\x04" and not name.lower().endswith(".zip"):
        return 1
    try:
        members = zipfile.ZipFile(source).infolist()
    except (zipfile.BadZipFile, OSError):
        return 1
    finally:
        source.seek(0)
    return max(1, sum(not m.is_dir() and not m.filename.startswith("__MACOSX/") for m in members))


def expand(files: Iterable[FileInput]) -> Iterator[tuple[str, bytes | Refused]]:
    """(name, bytes) for each file, members of zip archives in place of the archive."""
    for name, source in files:
        try:
            data = _read_limited(source)
        except Refused as exc:
            yield name, exc
            continue
        if data[:4] == b"PK\x03\x04" or name.lower().endswith(".zip"):
            yield from _zip_members(name, data)
        else:
            yield name, data


def _read_limited(source: bytes | IO[bytes]) -> bytes:
    data = source if isinstance(source, bytes) else source.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise Refused(TOO_LARGE)
    return data


def _zip_members(name: str, data: bytes) -> Iterator[tuple[str, bytes | Refused]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        yield name, Refused(f"not a readable zip archive ({exc})")
        return
    if len(members) > MAX_ZIP_MEMBERS or sum(m.file_size for m in members) > MAX_ZIP_BYTES:
        yield (
            name,
            Refused(
                f"zip archive too large: at most {MAX_ZIP_MEMBERS} files and "
                f"{MAX_ZIP_BYTES // 2**30} GiB uncompressed"
            ),
        )
        return
    for member in members:
        if member.filename.startswith("__MACOSX/"):
            continue
        member_name = f"{name}/{member.filename}"
        if member.file_size > MAX_FILE_BYTES:
            yield member_name, Refused(f"larger than the {MAX_FILE_BYTES // 2**20} MiB limit")
            continue
        try:
            yield member_name, archive.read(member)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            yield member_name, Refused(f"cannot be extracted from the archive ({exc})")


def import_one(
    pool: ReferencePool,
    name: str,
    data: bytes,
    user: Any,
    *,
    origin: str,
    fields: dict[str, Any] | None = None,
) -> ReferenceImage:
    """Validate, de-identify and store one file; raises Refused or Duplicate. ``fields``:
    more column values for the row (a teaching file's key)."""
    ds = read_image(data)
    check_synthetic(pool, ds)
    check_modality(pool, ds)
    digest = hashlib.sha256(str(ds.SOPInstanceUID).encode()).hexdigest()
    if pool.images.filter(source_uid_digest=digest).exists():
        raise Duplicate(name)
    record = deidentify(ds, key=pool_key(pool))
    return _store(
        pool, ds, record, name=name, digest=digest, user=user, origin=origin, fields=fields
    )


def is_synthetic(ds: Dataset) -> bool:
    return str(ds.get("SyntheticData", "")).upper() == "YES"


def check_synthetic(pool: ReferencePool, ds: Dataset) -> None:
    """A real pool takes real images only: a synthetic one would pass for real in a Turing
    study. Pools that hold synthetic teaching files take them."""
    if is_synthetic(ds) and not pool.holds_synthetic:
        raise Refused(
            "synthetic image (Synthetic Data = YES): this pool holds real images only; "
            "import teaching files of synthetic cases into a pool that holds synthetic "
            "teaching files"
        )


def check_modality(pool: ReferencePool, ds: Dataset) -> None:
    """A pool that names a modality takes images of that modality only."""
    modality = str(ds.get("Modality", "") or "")
    if pool.modality and modality != pool.modality:
        raise Refused(
            f"modality {modality or 'none'}: pool {pool.name} holds {pool.modality} images"
        )


def pool_key(pool: ReferencePool) -> bytes:
    """The pool's de-identification key, from GANTRY_PSEUDONYM_KEY (never SECRET_KEY: a site
    may rotate that one, and must not be able to re-identify with it)."""
    key = settings.GANTRY_PSEUDONYM_KEY
    if not key:
        raise ImproperlyConfigured("set GANTRY_PSEUDONYM_KEY to import real images")
    return hmac.new(key.encode(), f"reference-pool\x00{pool.pk}".encode(), "sha256").digest()


def read_image(data: bytes) -> Dataset:
    """Parse and check one DICOM image file, decoding its pixel data; raises Refused."""
    if not data:
        raise Refused("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = _parse(data)
    except Refused:
        raise
    except InvalidDicomError:
        raise Refused("not a DICOM file (no 'DICM' marker after the 128-byte preamble)") from None
    except EOFError:
        raise Refused("truncated: the file ends inside a data element") from None
    except Exception as exc:  # pydicom raises many types on malformed input
        raise Refused(f"unreadable DICOM ({type(exc).__name__}: {exc})") from None
    _check_lengths(ds, len(data))
    _check_header(ds)
    _check_decoded_size(ds)
    _check_codestreams(ds)
    _check_pixels(ds)
    return ds


def _parse(data: bytes) -> Dataset:
    """The dataset of a Part 10 file. File meta without the 128-byte preamble (as some STOW
    clients send) is accepted. A deflated file is inflated here, at most
    ``GANTRY_MAX_DECODED_BYTES`` of it, never whole by pydicom: a megabyte may inflate to
    gigabytes. It is then kept as Explicit VR Little Endian, what it holds once inflated."""
    stream = io.BytesIO(data)
    meta = _file_meta(stream)
    if meta.get("TransferSyntaxUID") != DEFLATED:
        return dcmread(io.BytesIO(data), force=data[:2] == b"\x02\x00")
    limit = settings.GANTRY_MAX_DECODED_BYTES
    inflated, whole = inflate(stream, limit)
    if not whole:
        raise Refused(f"the deflated data set inflates to more than {limit // 2**20} MiB")
    ds = dcmread(inflated, force=True)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.set_original_encoding(False, True, ds.original_character_set)
    return ds


def _file_meta(stream: IO[bytes]) -> Dataset:
    """The file meta of a Part 10 stream (with or without its preamble), which it leaves at
    the start of the data set."""
    start = stream.read(2)
    stream.seek(0)
    if read_preamble(stream, force=start == b"\x02\x00") is None:
        stream.seek(0)
    return _read_file_meta_info(stream)


def read_header(stream: IO[bytes], keywords: list[str]) -> Dataset:
    """Those attributes of a seekable Part 10 stream, for a reply that names what it
    refuses; of a deflated one only the first HEADER_BYTES are inflated. Raises what pydicom
    raises on a file it cannot read."""
    meta = _file_meta(stream)
    if meta.get("TransferSyntaxUID") == DEFLATED:
        stream = inflate(stream, HEADER_BYTES)[0]
    else:
        stream.seek(0)
    return dcmread(stream, force=True, stop_before_pixels=True, specific_tags=keywords)


def inflate(stream: IO[bytes], limit: int) -> tuple[IO[bytes], bool]:
    """What the deflated rest of ``stream`` inflates to, in a temporary file (in memory while
    small), and whether that is all of it: inflation stops once more than ``limit`` bytes
    came out (at most a chunk more). A chunk at a time, so memory never holds the whole."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = tempfile.SpooledTemporaryFile(max_size=INFLATE_IN_MEMORY)  # noqa: SIM115 (returned)
    size = 0
    try:
        # Bytes after the end of the deflate stream (a pad to even length) are not data: a
        # finished inflater keeps them unconsumed for ever.
        while size <= limit and not inflater.eof:
            pending = inflater.unconsumed_tail or stream.read(INFLATE_CHUNK)
            if not pending:
                break
            data = inflater.decompress(pending, INFLATE_CHUNK)
            size += len(data)
            out.write(data)
    except zlib.error as exc:
        raise Refused(f"the deflated data set cannot be inflated ({exc})") from None
    out.seek(0)
    return out, size <= limit


def declared_pixel_bytes(ds: Dataset) -> int:
    """The bytes the pixel data takes once decoded, from the header alone."""
    numbers = [ds.get(k) for k in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated")]
    rows, columns, samples, bits = (_int_or(v, 1) or 0 for v in numbers)
    frames = max(_int_or(ds.get("NumberOfFrames"), 1) or 1, 1)
    return rows * columns * max(samples, 1) * frames * bits // 8


def _check_decoded_size(ds: Dataset) -> None:
    limit = settings.GANTRY_MAX_DECODED_BYTES
    declared = declared_pixel_bytes(ds)
    if declared > limit:
        raise Refused(
            f"the pixel data would take {declared / 2**20:.0f} MiB decoded "
            f"(rows x columns x frames x samples x bits); the limit is {limit // 2**20} MiB"
        )


def codestream_size(codestream: bytes) -> tuple[int, int] | None:
    """(rows, columns) as a JPEG, JPEG-LS or JPEG 2000 codestream declares them, or None
    when it names no size where those standards put it."""
    if codestream[:4] == J2K_START:  # SOC, then SIZ: Xsiz, Ysiz, XOsiz, YOsiz
        if len(codestream) < 24:
            return None
        xsiz, ysiz, xosiz, yosiz = struct.unpack(">4L", codestream[8:24])
        return ysiz - yosiz, xsiz - xosiz
    info = _get_jpg_parameters(codestream)  # SOI, then SOF (or SOF55): height, width
    if not info.get("height") or not info.get("width"):
        return None
    return info["height"], info["width"]


def _check_codestreams(ds: Dataset) -> None:
    """A JPEG decoder allocates what its codestream declares, not what the header says:
    every frame's codestream must declare the header's rows and columns. Read from each
    frame's first fragment, before anything is decoded."""
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax not in JPEG_FAMILY or "PixelData" not in ds:
        return
    expected = (_int_or(ds.get("Rows"), 0), _int_or(ds.get("Columns"), 0))
    frames = max(_int_or(ds.get("NumberOfFrames"), 1) or 1, 1)
    try:
        fragmented = generate_fragmented_frames(ds.PixelData, number_of_frames=frames)
        for index, fragments in enumerate(fragmented, 1):
            declared = codestream_size(fragments[0]) if fragments else None
            if declared is not None and declared != expected:
                raise Refused(
                    f"frame {index}'s codestream declares {declared[0]} x {declared[1]} "
                    f"pixels where the header declares {expected[0]} x {expected[1]}"
                )
    except (ValueError, TypeError, struct.error):
        return  # no readable fragments: decoding refuses the file with its reason


def _check_lengths(ds: Dataset, size: int) -> None:
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        value = getattr(raw, "value", None)
        length = getattr(raw, "length", None)
        if (
            isinstance(value, bytes)
            and length not in (None, UNDEFINED_LENGTH)
            and length > len(value)
        ):
            raise Refused(
                f"element {Tag(tag)} declares a length of {length} bytes but the file "
                f"({size} bytes) holds only {len(value)} of them: truncated or corrupt"
            )


def _check_header(ds: Dataset) -> None:
    if getattr(ds, "file_meta", None) is None or "TransferSyntaxUID" not in ds.file_meta:
        raise Refused("no transfer syntax in the file meta information")
    if ds.get("SOPClassUID") == DICOMDIR_SOP_CLASS:
        raise Refused("a DICOMDIR (media index), not an image")
    _check_uids(ds)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise Refused("no pixel data: not an image (a report, structure set or similar)")
    for keyword in PIXEL_MODULE:
        elem = ds.get_item(keyword)
        if elem is None:
            raise Refused(f"missing {keyword}, needed to read the pixel data")
        expected = dictionary_VR(elem.tag)
        if elem.VR not in (*expected.split(" or "), "UN", None):  # None: implicit VR
            raise Refused(f"wrong VR: {keyword} {Tag(elem.tag)} is {elem.VR}, must be {expected}")
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise Refused("burned-in annotation: the pixels may carry identifying text")


def _check_uids(ds: Dataset) -> None:
    missing = [keyword for keyword in REQUIRED_UIDS if not ds.get(keyword)]
    if missing:
        raise Refused(f"missing required attribute(s): {', '.join(missing)}")
    for keyword in REQUIRED_UIDS:
        value = str(ds.get(keyword))
        if not is_uid(value):
            raise Refused(f"{keyword} {value[:80]!r} is not a UID (digits and dots, 64 at most)")


def is_uid(value: str) -> bool:
    """Digits and dots, at most 64 characters: what a DICOMweb or WADO-URI URL can name."""
    return len(value) <= 64 and UID_FORM.fullmatch(value) is not None


def _check_pixels(ds: Dataset) -> None:
    syntax = ds.file_meta.TransferSyntaxUID
    size = 0
    try:  # frame by frame: one decoded frame in memory at a time
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for frame in iter_pixels(ds):
                size += frame.size
    except NotImplementedError as exc:
        raise Refused(f"no decoder for transfer syntax {syntax.name} ({exc})") from None
    except Exception as exc:  # decoders raise ValueError, RuntimeError, ... on corrupt data
        raise Refused(f"pixel data cannot be decoded ({syntax.name}): {exc}") from None
    if size == 0:
        raise Refused("pixel data is empty")


def _store(
    pool: ReferencePool,
    ds: Dataset,
    record: dict[str, Any],
    *,
    name: str,
    digest: str,
    user: Any,
    origin: str,
    fields: dict[str, Any] | None = None,
) -> ReferenceImage:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    content = buffer.getvalue()
    stem = hashlib.sha256(str(ds.SOPInstanceUID).encode()).hexdigest()[:32]
    path = default_storage.save(f"reference/{pool.pk}/{stem}.dcm", ContentFile(content))
    try:
        with transaction.atomic():
            return ReferenceImage.objects.create(
                pool=pool,
                origin=origin,
                source_name=name[-300:],
                source_uid_digest=digest,
                deidentification=record,
                imported_by=user if getattr(user, "is_authenticated", False) else None,
                file=path,
                size=len(content),
                **header_fields(ds),
                **(fields or {}),
            )
    except IntegrityError:
        default_storage.delete(path)
        raise Duplicate(name) from None
    except BaseException:
        default_storage.delete(path)
        raise


def header_fields(ds: Dataset) -> dict[str, Any]:
    """The ReferenceImage columns taken from a (de-identified) dataset."""
    return {
        "study_uid": str(ds.StudyInstanceUID),
        "series_uid": str(ds.SeriesInstanceUID),
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "sop_class_uid": str(ds.SOPClassUID),
        "transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
        "modality": str(ds.get("Modality", "") or "OT")[:16],
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "frames": _int_or(ds.get("NumberOfFrames"), 1) or 1,
        "patient_id": str(ds.get("PatientID", ""))[:64],
        "study_date": _date_or_none(ds.get("StudyDate")),
        "series_number": _int_or(ds.get("SeriesNumber"), None),
        "instance_number": _int_or(ds.get("InstanceNumber"), None),
    }


def _int_or(value: Any, default: int | None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _date_or_none(value: Any) -> datetime.date | None:
    try:
        return datetime.datetime.strptime(str(value)[:8], "%Y%m%d").date()
    except (TypeError, ValueError):
        return None
