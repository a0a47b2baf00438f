"""Write DICOM for the viewer harness.

`write_samples`: a tiny progression series, three MR Image Storage files (tp0.dcm .. tp2.dcm).
Each image is 128x128 uint16, explicit VR little endian: a horizontal grey gradient with a
bright disc whose radius grows from timepoint to timepoint, so consecutive frames differ.

`write_scenarios`: further cases for the hanging layout and the geometry, each as DICOM files
plus the viewer data that shows them ({"studies": [...]}, see docs/viewer.md):

- "brain": two timepoints of three MR series (T1, T2-FLAIR, T1c), 256x256, axial
  ImageOrientationPatient [1,0,0,0,1,0]; a bright blob in the patient's left hemisphere
  (high column numbers), bigger at the second timepoint; the first timepoint has no T1c.
- "geometry": one study whose series differ in geometry: flipped axial, sagittal, coronal,
  oblique, non-square pixels, a DX radiograph with only ImagerPixelSpacing and
  PatientOrientation, one without any spacing, and a 64x64 image.

Usage: python make_sample.py OUTPUT_DIR
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

SIZE = 128
DISC_RADII = (12, 24, 36)
BACKGROUND_MIN = 200
BACKGROUND_MAX = 1000
DISC_VALUE = 3000
WINDOW_CENTER = 1500
WINDOW_WIDTH = 3000
BRAIN_SIZE = 256
BRAIN_SPACING = 0.9375
BRAIN_BLOB_COLUMN = 190  # > BRAIN_SIZE / 2: the patient's left for IOP [1,0,0,0,1,0]
BRAIN_BLOB_ROW = 100
BRAIN_BLOB_RADII = (14, 28)
BRAIN_SERIES = (("1", "T1", 900), ("2", "T2-FLAIR", 1400), ("3", "T1c", 1900))
BRAIN_WINDOWS = {"1": (600, 1200), "2": (900, 1800), "3": (1200, 2400)}


@dataclass(frozen=True)
class Geometry:
    """What one harness series says about its geometry (absent values are left out)."""

    key: str
    label: str
    modality: str = "MR"
    size: int = 128
    orientation: tuple[float, ...] | None = (1, 0, 0, 0, 1, 0)
    position: tuple[float, float, float] | None = (-100.0, -80.0, 10.0)
    pixel_spacing: tuple[float, float] | None = (1.0, 1.0)
    imager_spacing: tuple[float, float] | None = None
    patient_orientation: tuple[str, str] | None = None
    extra: dict = field(default_factory=dict)


OBLIQUE_DEG = 30.0
GEOMETRY_SERIES = (
    Geometry("axial-flipped", "axial, flipped", orientation=(-1, 0, 0, 0, 1, 0)),
    Geometry("sagittal", "sagittal", orientation=(0, 1, 0, 0, 0, -1)),
    Geometry("coronal", "coronal", orientation=(1, 0, 0, 0, 0, -1)),
    Geometry(
        "oblique",
        "oblique axial",
        orientation=(
            float(np.cos(np.radians(OBLIQUE_DEG))),
            float(np.sin(np.radians(OBLIQUE_DEG))),
            0.0,
            -float(np.sin(np.radians(OBLIQUE_DEG))),
            float(np.cos(np.radians(OBLIQUE_DEG))),
            0.0,
        ),
    ),
    # Rows 0.5 mm apart, columns 2.0 mm apart: a length along a row is 4x one down a column.
    Geometry("anisotropic", "non-square pixels", pixel_spacing=(0.5, 2.0)),
    Geometry(
        "dx",
        "PA chest",
        modality="DX",
        orientation=None,
        position=None,
        pixel_spacing=None,
        imager_spacing=(0.7, 0.7),
        patient_orientation=("L", "F"),
    ),
    Geometry("no-spacing", "no spacing", pixel_spacing=None),
    Geometry("small", "64 x 64", size=64),
)


def sample_pixels(radius: int) -> np.ndarray:
    """uint16 [SIZE, SIZE]: gradient BACKGROUND_MIN..MAX left to right plus a centred disc."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    ramp = BACKGROUND_MIN + cols * (BACKGROUND_MAX - BACKGROUND_MIN) / (SIZE - 1)
    pixels = ramp.astype(np.uint16)
    disc = (rows - SIZE / 2) ** 2 + (cols - SIZE / 2) ** 2 <= radius**2
    pixels[disc] = DISC_VALUE
    return pixels


def _base_dataset(sop_class: str, sop_uid: str, pixels: np.ndarray) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.PatientName = "Harness^Viewer"
    ds.PatientID = "HARNESS"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    return ds


def sample_dataset(timepoint: int, radius: int, study_uid: str, series_uid: str) -> Dataset:
    sop_instance_uid = generate_uid(entropy_srcs=["gantry-viewer-harness", str(timepoint)])
    ds = _base_dataset(MRImageStorage, sop_instance_uid, sample_pixels(radius))
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "MR"
    ds.StudyDate = f"2026010{timepoint + 1}"
    ds.SeriesNumber = 1
    ds.InstanceNumber = timepoint + 1
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.MRAcquisitionType = "2D"
    ds.PixelSpacing = [1.0, 1.0]
    ds.WindowCenter = WINDOW_CENTER
    ds.WindowWidth = WINDOW_WIDTH
    return ds


def write_samples(directory: Path) -> list[Path]:
    """Write tp0.dcm .. tp2.dcm into `directory` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    study_uid = generate_uid(entropy_srcs=["gantry-viewer-harness", "study"])
    series_uid = generate_uid(entropy_srcs=["gantry-viewer-harness", "series"])
    paths = []
    for timepoint, radius in enumerate(DISC_RADII):
        path = directory / f"tp{timepoint}.dcm"
        sample_dataset(timepoint, radius, study_uid, series_uid).save_as(
            path, enforce_file_format=True
        )
        paths.append(path)
    return paths


def brain_pixels(base: int, radius: int) -> np.ndarray:
    """A head-sized ellipse at `base` with a bright blob in the patient's left hemisphere."""
    rows, cols = np.mgrid[0:BRAIN_SIZE, 0:BRAIN_SIZE]
    centre = BRAIN_SIZE / 2
    pixels = np.full((BRAIN_SIZE, BRAIN_SIZE), 50, dtype=np.uint16)
    head = ((rows - centre) / 110) ** 2 + ((cols - centre) / 90) ** 2 <= 1
    pixels[head] = base
    blob = (rows - BRAIN_BLOB_ROW) ** 2 + (cols - BRAIN_BLOB_COLUMN) ** 2 <= radius**2
    pixels[blob] = base + 1000
    return pixels


def _write(ds: Dataset, directory: Path, name: str) -> str:
    ds.save_as(directory / name, enforce_file_format=True)
    return f"wadouri:/samples/{name}"


def _mr_fields(ds: Dataset) -> None:
    ds.Modality = "MR"
    ds.ScanningSequence = "RM"
    ds.SequenceVariant = "NONE"
    ds.MRAcquisitionType = "2D"


def write_brain(directory: Path) -> dict:
    studies = []
    for timepoint, radius in enumerate(BRAIN_BLOB_RADII):
        study_uid = generate_uid(entropy_srcs=["harness-brain", str(timepoint)])
        series = []
        for key, label, base in BRAIN_SERIES:
            if timepoint == 0 and label == "T1c":
                continue  # not acquired at the first timepoint
            uid = generate_uid(entropy_srcs=["harness-brain", str(timepoint), key])
            ds = _base_dataset(MRImageStorage, uid, brain_pixels(base, radius))
            _mr_fields(ds)
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = generate_uid(
                entropy_srcs=["harness-brain-s", str(timepoint), key]
            )
            ds.SeriesNumber = int(key)
            ds.SeriesDescription = label
            ds.InstanceNumber = 1
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [-120, -120, 0]
            ds.PixelSpacing = [BRAIN_SPACING, BRAIN_SPACING]
            ds.WindowCenter, ds.WindowWidth = BRAIN_WINDOWS[key]
            image_id = _write(ds, directory, f"brain-t{timepoint}-{key}.dcm")
            series.append({"key": key, "label": label, "imageIds": [image_id]})
        studies.append({"label": f"t{timepoint + 1}", "series": series})
    return {"studies": studies}


def geometry_dataset(geometry: Geometry, uid: str) -> Dataset:
    rows, cols = np.mgrid[0 : geometry.size, 0 : geometry.size]
    pixels = 200 + 8 * ((rows // 8 + cols // 8) % 2) * 100  # a checkerboard
    sop_class = (
        DigitalXRayImageStorageForPresentation if geometry.modality == "DX" else MRImageStorage
    )
    ds = _base_dataset(sop_class, uid, pixels)
    if geometry.modality == "MR":
        _mr_fields(ds)
    else:
        ds.Modality = geometry.modality
    if geometry.orientation is not None:
        ds.ImageOrientationPatient = list(geometry.orientation)
    if geometry.position is not None:
        ds.ImagePositionPatient = list(geometry.position)
    if geometry.pixel_spacing is not None:
        ds.PixelSpacing = list(geometry.pixel_spacing)
    if geometry.imager_spacing is not None:
        ds.ImagerPixelSpacing = list(geometry.imager_spacing)
    if geometry.patient_orientation is not None:
        ds.PatientOrientation = list(geometry.patient_orientation)
    ds.WindowCenter, ds.WindowWidth = 600, 1200
    return ds


def write_geometry(directory: Path) -> dict:
    study_uid = generate_uid(entropy_srcs=["harness-geometry"])
    series = []
    for number, geometry in enumerate(GEOMETRY_SERIES, start=1):
        uid = generate_uid(entropy_srcs=["harness-geometry", geometry.key])
        ds = geometry_dataset(geometry, uid)
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=["harness-geometry-s", geometry.key])
        ds.SeriesNumber = number
        ds.SeriesDescription = geometry.label
        image_id = _write(ds, directory, f"geometry-{geometry.key}.dcm")
        series.append({"key": geometry.key, "label": geometry.label, "imageIds": [image_id]})
    return {"studies": [{"label": "geometry", "series": series}]}


def write_scenarios(directory: Path) -> dict[str, dict]:
    """Write every scenario's files into `directory`; return its viewer data by name."""
    directory.mkdir(parents=True, exist_ok=True)
    return {"brain": write_brain(directory), "geometry": write_geometry(directory)}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    for written in write_samples(out):
        print(written)
    print(json.dumps(write_scenarios(out), indent=1))
