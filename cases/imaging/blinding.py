"""Blinded DICOM copies: what a reader is shown in place of a stored image.

One module makes every copy that hides where an image came from:

- :func:`quiz_copy`: a quiz image. The stored pixels and the attributes that render them,
  its orientation and the synthetic marker kept, under opaque UIDs: nothing that names a
  timepoint, severity, date or patient, so that a staging question cannot be read from the
  header.
- :func:`reading_copy`: an image of a visual Turing study. Either side's source becomes a
  file with one header (the same attributes and values for every image of a study but fresh
  UIDs of one length), one size, one 12-bit scale, no synthetic marker, device, software,
  date or identifier. Its pixels come only from the source and are moved by a random
  sub-pixel shift and dithered rounding, so that no copy is byte- or pixel-identical to a
  stored file (which, while the study is open, its raters cannot fetch anyway).
- :func:`image_dataset`: the header of a 12-bit greyscale image that reading copies and the
  demo's simulated stand-ins for real images (``load_reference_pool``) are written with.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

BITS_STORED = 12
MAX_VALUE = 2**BITS_STORED - 1
SERIES_DESCRIPTION = "Reading study image"
UID_DIGITS = 38  # "2.25." + 38 digits: 43 characters, within the 64 a UID may have
MAX_SHIFT_PX = 0.5  # a reading copy's random shift, in source pixels, either way on each axis

# What a quiz copy keeps of its source: the pixel module, display, the orientation the viewer
# marks its edges from (R/L, A/P, H/F; the same at every timepoint) and the synthetic marker.
QUIZ_KEPT = (
    "SOPClassUID",
    "Modality",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "WindowCenter",
    "WindowWidth",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "ImageOrientationPatient",
    "PatientOrientation",
    "PresentationLUTShape",
    "PixelIntensityRelationship",
    "PixelIntensityRelationshipSign",
    "SyntheticData",
    "PixelData",
)


def part10(ds: Dataset) -> bytes:
    """The Part 10 file of ``ds`` (Explicit VR Little Endian, with its file meta)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _read(source: bytes | io.BufferedIOBase) -> Dataset:
    try:
        return pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Exception as exc:  # InvalidDicomError, truncated files, bad values
        raise ValueError(f"not a readable DICOM file: {exc}") from exc


def _file_meta(ds: Dataset) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID


# ---- quizzes --------------------------------------------------------------------------------


def quiz_copy(
    source: bytes | io.BufferedIOBase, *, opaque_key: str, study_key: str | None = None
) -> bytes:
    """The Part 10 bytes of a pixel-only copy of ``source``.

    ``opaque_key`` seeds the new UIDs, so one image in one attempt always has the same ones
    (the viewer caches by URL) while nothing ties them to the stored study; ``study_key``,
    where given, seeds the Study Instance UID instead, which the contrasts of one shown
    study share.
    """
    original = _read(source)
    ds = Dataset()
    for keyword in QUIZ_KEPT:
        if keyword in original:
            setattr(ds, keyword, original[keyword].value)
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[opaque_key, "sop"])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[study_key or opaque_key, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[opaque_key, "series"])
    ds.PatientName = "Quiz^Image"
    ds.PatientID = "QUIZ"
    _file_meta(ds)
    return part10(ds)


# ---- 12-bit greyscale images ------------------------------------------------------------------


def opaque_uid() -> str:
    """A random UID under the 2.25 root with exactly ``UID_DIGITS`` digits after it."""
    low = 10 ** (UID_DIGITS - 1)
    return f"2.25.{low + secrets.randbelow(9 * low)}"


def image_dataset(
    values: np.ndarray,  # stored values [rows, cols], 0..4095
    *,
    modality: str,
    sop_class: str = SecondaryCaptureImageStorage,
    sop_uid: str,
    study_uid: str,
    series_uid: str,
) -> Dataset:
    """A 12-bit MONOCHROME2 image (16 bits allocated) with the type 2 attributes empty; the
    caller adds what the image is (descriptions, patient, spacing)."""
    if values.ndim != 2 or values.dtype != np.uint16 or int(values.max(initial=0)) > MAX_VALUE:
        raise ValueError("stored values must be a 2-D uint16 array within 0..4095")
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.ReferringPhysicianName = ""
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = values.shape
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.PixelData = values.tobytes()
    _file_meta(ds)
    return ds


# ---- visual Turing studies --------------------------------------------------------------------


@dataclass(frozen=True)
class BlindSpec:
    """What every blinded image of one study shares."""

    modality: str
    size: int  # rows = columns
    pixel_spacing_mm: float


def source_pixels(ds: Dataset) -> np.ndarray:
    """The source's grey levels as float64 [rows, cols], brighter = higher.

    Raises ValueError for what a reading study cannot show (colour, undecodable pixels).
    """
    if "PixelData" not in ds:
        raise ValueError("the file holds no image (no Pixel Data)")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise ValueError("only greyscale images can be blinded")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"unsupported photometric interpretation {photometric}")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for undecodable pixel data
        raise ValueError(f"cannot decode the pixel data: {exc}") from exc
    if pixels.ndim == 3:
        pixels = pixels[pixels.shape[0] // 2]
    values = pixels.astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1)
    values += float(ds.get("RescaleIntercept", 0) or 0)
    return -values if photometric == "MONOCHROME1" else values


def resample(pixels: np.ndarray, size: int, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """``pixels`` on a size x size grid (Lanczos); with a ``shift`` (rows, columns) of at most
    ``MAX_SHIFT_PX`` source pixels each way, the grid is the image less a margin of that much,
    moved by it. The identity when the size is the same and there is no shift."""
    if pixels.shape == (size, size) and shift == (0.0, 0.0):
        return pixels
    rows, cols = pixels.shape
    dy, dx = shift
    margin = MAX_SHIFT_PX if shift != (0.0, 0.0) else 0.0
    image = Image.fromarray(pixels.astype(np.float32), mode="F")
    # PIL's box: (left, upper, right, lower), inside the image
    box = (margin + dx, margin + dy, cols - margin + dx, rows - margin + dy)
    resized = image.resize((size, size), Image.Resampling.LANCZOS, box=box)
    return np.asarray(resized, dtype=np.float64)


def to_stored(pixels: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Linear map of the image's own min..max onto 0..4095 (uint16); a flat image is 0. With
    ``rng``, rounding is dithered: a uniform -0.5..0.5 added before it."""
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, np.uint16)
    scaled = (pixels - low) / (high - low) * MAX_VALUE
    if rng is not None:
        scaled = scaled + rng.uniform(-0.5, 0.5, scaled.shape)
    return np.clip(np.round(scaled), 0, MAX_VALUE).astype(np.uint16)


def reading_copy(source: bytes, spec: BlindSpec) -> bytes:
    """The blinded DICOM file (Part 10 bytes) of the source DICOM file ``source``."""
    ds = _read(source)
    rng = np.random.default_rng(secrets.randbits(128))
    shift = tuple(float(v) for v in rng.uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX, 2))
    values = to_stored(resample(source_pixels(ds), spec.size, shift), rng)  # type: ignore[arg-type]
    out = image_dataset(
        values,
        modality=spec.modality,
        sop_uid=opaque_uid(),
        study_uid=opaque_uid(),
        series_uid=opaque_uid(),
    )
    out.ImageType = ["DERIVED", "SECONDARY"]
    out.ConversionType = "WSD"
    out.SeriesDescription = SERIES_DESCRIPTION
    out.PatientName = "READER^STUDY"
    out.PatientID = "READER-STUDY"
    out.PixelSpacing = [f"{spec.pixel_spacing_mm:.6f}"] * 2
    out.BurnedInAnnotation = "NO"
    out.WindowCenter = "2048"
    out.WindowWidth = "4096"
    out.RescaleIntercept = "0"
    out.RescaleSlope = "1"
    out.RescaleType = "US"
    return part10(out)
