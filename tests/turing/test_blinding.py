"""Blinded copies: one header set for both sides, pixels only from the source."""

import io

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from cases.imaging.blinding import BlindSpec, resample, source_pixels, to_stored
from cases.imaging.blinding import reading_copy as blind
from tests.turing.factories import reference_dicom

SPEC = BlindSpec(modality="MR", size=32, pixel_spacing_mm=4.0)
REMOVED = (
    "SyntheticData",
    "Manufacturer",
    "ManufacturerModelName",
    "ContributingEquipmentSequence",
    "DeviceSerialNumber",
    "SoftwareVersions",
    "ImageComments",
    "InstitutionName",
    "InstanceCreationDate",
)
UIDS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def header_without_uids(ds: pydicom.Dataset) -> list[tuple[str, object]]:
    return [(el.keyword, el.value) for el in ds if el.keyword not in (*UIDS, "PixelData")]


@pytest.fixture
def synthetic_bytes(make_cases):
    case = make_cases(1)[0]
    instance = case.studies.first().series.get(modality="MR").instances.get()
    return instance.file.read()


def test_synthetic_markers_are_gone(synthetic_bytes):
    assert read(synthetic_bytes).SyntheticData == "YES"  # the source says so
    out = read(blind(synthetic_bytes, SPEC))
    for keyword in REMOVED:
        assert keyword not in out, keyword
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert (out.Rows, out.Columns, out.BitsAllocated, out.BitsStored) == (32, 32, 16, 12)
    assert out.PhotometricInterpretation == "MONOCHROME2"
    assert out.SeriesDescription == "Reading study image"


@pytest.mark.parametrize(
    "variety",
    [
        {"implicit": True, "rows": 64, "columns": 48},
        {"monochrome1": True},
        {"signed": True, "rows": 40, "columns": 40},
        {"rows": 32, "columns": 32},
    ],
)
def test_real_and_synthetic_blind_to_the_same_header_and_size(synthetic_bytes, variety):
    real = blind(reference_dicom(3, **variety), SPEC)
    synthetic = blind(synthetic_bytes, SPEC)
    assert len(real) == len(synthetic)
    real_ds, synthetic_ds = read(real), read(synthetic)
    assert header_without_uids(real_ds) == header_without_uids(synthetic_ds)
    assert real_ds.file_meta.TransferSyntaxUID == synthetic_ds.file_meta.TransferSyntaxUID
    for keyword in UIDS:
        assert real_ds[keyword].value != synthetic_ds[keyword].value
        assert len(real_ds[keyword].value) == len(synthetic_ds[keyword].value) == 43


def test_every_blinding_gets_fresh_uids_and_pixels(synthetic_bytes):
    first, second = read(blind(synthetic_bytes, SPEC)), read(blind(synthetic_bytes, SPEC))
    assert {first[k].value for k in UIDS}.isdisjoint({second[k].value for k in UIDS})
    assert not np.array_equal(first.pixel_array, second.pixel_array)


def test_pixels_come_from_the_source_only_and_match_no_stored_file(synthetic_bytes):
    """A copy is the source, moved by a fraction of a pixel and dithered: it correlates with
    the source but equals no rescaling of it, so a fetched file cannot be matched exactly."""
    source = source_pixels(read(synthetic_bytes))
    out = read(blind(synthetic_bytes, SPEC)).pixel_array.astype(float)
    rescaled = to_stored(resample(source, SPEC.size)).astype(float)
    assert np.corrcoef(out.ravel(), rescaled.ravel())[0, 1] > 0.95
    assert np.abs(out - rescaled).mean() > 1.0  # 4096 levels: more than rounding apart
    assert not np.array_equal(out, rescaled)
    assert blind(synthetic_bytes, SPEC) != synthetic_bytes


def test_monochrome1_is_inverted_into_monochrome2():
    plain = read(blind(reference_dicom(5, rows=32, columns=32), SPEC)).pixel_array
    inverted = read(
        blind(reference_dicom(5, rows=32, columns=32, monochrome1=True), SPEC)
    ).pixel_array
    # Each copy is moved by its own random sub-pixel shift (up to a pixel apart at the disc's
    # edge); an image left inverted would correlate at about -0.9.
    assert np.corrcoef(plain.ravel(), inverted.ravel())[0, 1] > 0.8


def test_larger_sources_are_resampled_to_the_study_size():
    out = read(blind(reference_dicom(6, rows=96, columns=64), SPEC))
    assert out.pixel_array.shape == (32, 32)
    assert out.pixel_array.max() == 4095
    assert out.pixel_array.min() == 0


def test_unreadable_or_colour_sources_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="not a readable DICOM"):
        blind(b"not dicom at all", SPEC)
    ds = read(reference_dicom(1))
    ds.SamplesPerPixel = 3
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(ValueError, match="greyscale"):
        blind(buffer.getvalue(), SPEC)
