"""Pixel data for WADO-RS: frames (native or as stored), rendered images, and transcoding to
Explicit VR Little Endian (the default transfer syntax of application/dicom)."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image
from pydicom import Dataset, dcmread
from pydicom.encaps import generate_frames
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pack_bits
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

NATIVE_LITTLE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, "1.2.840.10008.1.2.1.99")


class FrameError(ValueError):
    """A frame number outside the instance (answered with 400)."""


def load(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(io.BytesIO(data))


def number_of_frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def check_frames(ds: Dataset, frames: list[int]) -> None:
    total = number_of_frames(ds)
    bad = [n for n in frames if not 1 <= n <= total]
    if bad:
        raise FrameError(f"frame(s) {bad} outside 1..{total}")


def stored_frames(ds: Dataset, frames: list[int]) -> list[bytes]:
    """Frames exactly as stored in an encapsulated (compressed) transfer syntax."""
    check_frames(ds, frames)
    encoded = list(generate_frames(ds.PixelData, number_of_frames=number_of_frames(ds)))
    return [encoded[n - 1] for n in frames]


def native_frames(ds: Dataset, frames: list[int]) -> list[bytes]:
    """Frames as uncompressed little-endian pixel bytes (1-bit data packed per frame)."""
    check_frames(ds, frames)
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    bits = int(ds.BitsAllocated)
    if syntax in NATIVE_LITTLE and bits % 8 == 0:
        frame_bytes = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel) * bits // 8
        data = ds.PixelData
        return [data[(n - 1) * frame_bytes : n * frame_bytes] for n in frames]
    return [_decoded_bytes(ds, n, bits) for n in frames]


def _decoded_bytes(ds: Dataset, frame: int, bits: int) -> bytes:
    pixels = _frame_array(ds, frame, as_rgb=False)
    if bits == 1:
        return pack_bits(pixels)
    return pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()


def _frame_array(ds: Dataset, frame: int, *, as_rgb: bool = True) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydicom.pixels import pixel_array

        return pixel_array(ds, index=frame - 1, raw=not as_rgb)


def rendered(ds: Dataset, frame: int, media_type: str) -> bytes:
    """One frame as an 8-bit image/png or image/jpeg, windowed as the header says."""
    check_frames(ds, [frame])
    pixels = _frame_array(ds, frame)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    elif int(ds.get("SamplesPerPixel", 1)) == 1:
        pixels = apply_voi_lut(apply_modality_lut(pixels, ds), ds)
    image = Image.fromarray(_to_uint8(pixels, invert=photometric == "MONOCHROME1"))
    buffer = io.BytesIO()
    if media_type == "image/png":
        image.save(buffer, format="PNG")
    else:
        image.convert("RGB" if image.mode == "RGB" else "L").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _to_uint8(pixels: np.ndarray, *, invert: bool) -> np.ndarray:
    values = pixels.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
    if invert:
        scaled = 255.0 - scaled
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def to_explicit_little(ds: Dataset) -> bytes:
    """The instance re-encoded as Explicit VR Little Endian (decompressed if need be)."""
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if syntax.is_compressed:
            ds.decompress()
        elif not syntax.is_little_endian and "PixelData" in ds:
            pixels = ds.pixel_array
            ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()
