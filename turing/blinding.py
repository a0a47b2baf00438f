"""Blinded copies of study images: nothing but the pixels may tell real from synthetic.

:func:`blind` turns either side's source DICOM into a new file with

- one transfer syntax (Explicit VR Little Endian) and one fixed list of attributes, every
  value the same for every image of a study except the fresh UIDs;
- no Synthetic Data, manufacturer, contributing equipment, device, software, dates,
  comments, patient or generator identifiers;
- the study's rows/columns (the source is resampled), pixel spacing, 16 bits allocated /
  12 stored, MONOCHROME2, a fixed full-range window;
- fresh random UIDs of one fixed length, so even the header's length is constant.

Pixels come only from the source: the stored values after the modality LUT (rescale),
inverted for MONOCHROME1, the middle frame of a multi-frame image, resampled with Lanczos
and mapped linearly from their own min..max onto the 12-bit range.
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
)

BITS_STORED = 12
MAX_VALUE = 2**BITS_STORED - 1
SERIES_DESCRIPTION = "Reading study image"
UID_DIGITS = 38  # "2.25." + 38 digits: 43 characters, within the 64 a UID may have


def opaque_uid() -> str:
    """A random UID under the 2.25 root with exactly ``UID_DIGITS`` digits after it."""
    low = 10 ** (UID_DIGITS - 1)
    return f"2.25.{low + secrets.randbelow(9 * low)}"


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


def resample(pixels: np.ndarray, size: int) -> np.ndarray:
    """``pixels`` on a size x size grid (Lanczos; unchanged when already that size)."""
    if pixels.shape == (size, size):
        return pixels
    image = Image.fromarray(pixels.astype(np.float32), mode="F")
    return np.asarray(image.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)


def to_stored(pixels: np.ndarray) -> np.ndarray:
    """Linear map of the image's own min..max onto 0..4095 (uint16); a flat image is 0."""
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, np.uint16)
    return np.round((pixels - low) / (high - low) * MAX_VALUE).astype(np.uint16)


def _header(spec: BlindSpec, rows_cols: tuple[int, int]) -> Dataset:
    sop_uid = opaque_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.Modality = spec.modality
    ds.ConversionType = "WSD"
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = SERIES_DESCRIPTION
    ds.PatientName = "READER^STUDY"
    ds.PatientID = "READER-STUDY"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = opaque_uid()
    ds.SeriesInstanceUID = opaque_uid()
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows_cols
    ds.PixelSpacing = [f"{spec.pixel_spacing_mm:.6f}"] * 2
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.WindowCenter = "2048"
    ds.WindowWidth = "4096"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    return ds


def blind(source: bytes, spec: BlindSpec) -> bytes:
    """The blinded DICOM file (Part 10 bytes) of the source DICOM file ``source``."""
    try:
        ds = pydicom.dcmread(io.BytesIO(source))
    except Exception as exc:  # InvalidDicomError, truncated files, bad values
        raise ValueError(f"not a readable DICOM file: {exc}") from exc
    values = to_stored(resample(source_pixels(ds), spec.size))
    out = _header(spec, values.shape)
    out.PixelData = values.tobytes()
    buffer = io.BytesIO()
    out.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
