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
        elif not syntax.is_little_endian:
            _to_little_endian(ds)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


# Binary VRs made of words that big endian stores the other way round, by word size.
WORD_BYTES = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}
PIXEL_DATA = 0x7FE00010


def _to_little_endian(ds: Dataset) -> None:
    """Turn a dataset read from Explicit VR Big Endian into one pydicom writes as little
    endian: every value parsed (numbers then encode in the new order), words of binary values
    swapped, and native pixel data stored as words (OW) rewritten from its decoded samples
    (bytes, OB, read the same in both orders)."""
    words = "PixelData" in ds and ds["PixelData"].VR != "OB" and int(ds.BitsAllocated) > 1
    pixels = ds.pixel_array if words else None
    for dataset in _all_datasets(ds):
        for elem in dataset:  # iterating parses each raw element with the encoding it was read in
            width = WORD_BYTES.get(elem.VR, 0)
            value = elem.value
            if (
                width
                and elem.tag != PIXEL_DATA
                and isinstance(value, bytes)
                and _fits(value, width)
            ):
                elem.value = np.frombuffer(value, f">u{width}").byteswap().tobytes()
    if pixels is not None:
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
        if int(ds.get("SamplesPerPixel", 1)) > 1:
            ds.PlanarConfiguration = 0  # the decoded samples come colour by pixel
    for dataset in _all_datasets(ds):
        dataset.set_original_encoding(False, True, dataset.original_character_set)


def _fits(value: bytes, width: int) -> bool:
    return len(value) % width == 0


def _all_datasets(ds: Dataset) -> list[Dataset]:
    found, pending = [], [ds]
    while pending:
        dataset = pending.pop()
        found.append(dataset)
        pending.extend(item for elem in dataset if elem.VR == "SQ" for item in elem.value)
    return found
