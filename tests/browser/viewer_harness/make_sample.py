"""Write a tiny progression series for the viewer harness: three MR Image Storage files.

Each image is 128x128 uint16, explicit VR little endian: a horizontal grey gradient with a bright
disc whose radius grows from timepoint to timepoint, so consecutive frames differ visibly.

Usage: python make_sample.py OUTPUT_DIR  (writes tp0.dcm, tp1.dcm, tp2.dcm)
"""

import sys
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
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


def sample_pixels(radius: int) -> np.ndarray:
    """uint16 [SIZE, SIZE]: gradient BACKGROUND_MIN..MAX left to right plus a centred disc."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    ramp = BACKGROUND_MIN + cols * (BACKGROUND_MAX - BACKGROUND_MIN) / (SIZE - 1)
    pixels = ramp.astype(np.uint16)
    disc = (rows - SIZE / 2) ** 2 + (cols - SIZE / 2) ** 2 <= radius**2
    pixels[disc] = DISC_VALUE
    return pixels


def sample_dataset(timepoint: int, radius: int, study_uid: str, series_uid: str) -> Dataset:
    sop_instance_uid = generate_uid(entropy_srcs=["gantry-viewer-harness", str(timepoint)])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "MR"
    ds.PatientName = "Harness^Viewer"
    ds.PatientID = "HARNESS"
    ds.StudyDate = f"2026010{timepoint + 1}"
    ds.SeriesNumber = 1
    ds.InstanceNumber = timepoint + 1
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.MRAcquisitionType = "2D"
    ds.PixelSpacing = [1.0, 1.0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = SIZE
    ds.Columns = SIZE
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.WindowCenter = WINDOW_CENTER
    ds.WindowWidth = WINDOW_WIDTH
    ds.PixelData = sample_pixels(radius).tobytes()
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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for written in write_samples(Path(sys.argv[1])):
        print(written)
