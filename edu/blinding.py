"""Quiz images without their answers: a DICOM copy that keeps only what renders the pixels.

The stored files name their timepoint and severity (ImageComments), carry study dates and
descriptions that give away a progression's order, and the patient's identity. A quiz
serves a new dataset holding the pixel module, the display attributes and the synthetic
marker, under opaque UIDs, so that a staging question cannot be read from the headers.
"""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

KEPT = (
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
    "PresentationLUTShape",
    "PixelIntensityRelationship",
    "PixelIntensityRelationshipSign",
    "SyntheticData",
    "PixelData",
)


def blinded_copy(source: bytes | io.BufferedIOBase, *, opaque_key: str) -> bytes:
    """The Part 10 bytes of a pixel-only copy of ``source``.

    ``opaque_key`` seeds the new UIDs, so one image in one attempt always has the same ones
    (the viewer caches by URL) while nothing ties them to the stored study.
    """
    original = pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else source)
    ds = Dataset()
    for keyword in KEPT:
        if keyword in original:
            setattr(ds, keyword, original[keyword].value)
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[opaque_key, "sop"])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[opaque_key, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[opaque_key, "series"])
    ds.PatientName = "Quiz^Image"
    ds.PatientID = "QUIZ"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
