"""Real-side test data: small DICOM files with the variety real imports bring (transfer
syntaxes, photometric interpretations, sizes, vendors, dates), stored as ReferenceImages."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from django.core.files.base import ContentFile
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from cases.models import ReferenceImage, ReferencePool

VENDORS = ("SIEMENS", "GE MEDICAL SYSTEMS", "Philips Medical Systems", "Canon")


def reference_dicom(
    index: int,
    *,
    rows: int = 48,
    columns: int = 48,
    implicit: bool = False,
    monochrome1: bool = False,
    signed: bool = False,
    modality: str = "MR",
) -> bytes:
    """A plausible acquired MR image: a bright disc on noise, with vendor headers."""
    rng = np.random.default_rng(index)
    yy, xx = np.mgrid[:rows, :columns]
    disc = ((yy - rows / 2) ** 2 + (xx - columns / 2) ** 2) < (min(rows, columns) / 3) ** 2
    pixels = 200 + 800 * disc + rng.normal(0, 40, (rows, columns))
    if signed:
        pixels -= 500
    dtype = np.int16 if signed else np.uint16
    values = np.clip(pixels, -32768 if signed else 0, 4095).astype(dtype)
    if monochrome1:
        values = (values.max() - values).astype(dtype)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = modality
    ds.Manufacturer = VENDORS[index % len(VENDORS)]
    ds.InstitutionName = "Anonymised"
    ds.StudyDate = f"2019{index % 12 + 1:02d}15"
    ds.PatientName, ds.PatientID = "ANON", f"ANON{index:04d}"
    ds.SeriesDescription = "T1 MPRAGE sag" if index % 2 else "ax T1 SE"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.PixelSpacing = ["0.9375", "0.9375"]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16 if signed else 12, 15 if signed else 11
    ds.PixelRepresentation = int(signed)
    ds.RescaleSlope, ds.RescaleIntercept = "1", "0"
    ds.PixelData = values.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=implicit, little_endian=True, enforce_file_format=True)
    return buffer.getvalue()


def make_reference_images(pool: ReferencePool, n: int, **variety: object) -> list[ReferenceImage]:
    """``n`` stored ReferenceImages in ``pool``; without ``variety`` they cycle through sizes,
    transfer syntaxes and photometric interpretations."""
    images = []
    for i in range(n):
        options = variety or {
            "rows": (48, 64, 40)[i % 3],
            "columns": (48, 64, 56)[i % 3],
            "implicit": i % 2 == 0,
            "monochrome1": i % 5 == 0,
            "signed": i % 7 == 3,
        }
        data = reference_dicom(1000 * pool.pk + i, **options)
        sop_uid = generate_uid()
        image = ReferenceImage(
            pool=pool,
            origin=ReferenceImage.Origin.IMPORT,
            source_name=f"scan-{i:03d}.dcm",
            source_uid_digest=hashlib.sha256(sop_uid.encode()).hexdigest(),
            study_uid=generate_uid(),
            series_uid=generate_uid(),
            sop_instance_uid=sop_uid,
            sop_class_uid=MRImageStorage,
            transfer_syntax_uid=ExplicitVRLittleEndian,
            modality="MR",
            rows=int(options["rows"]),
            columns=int(options["columns"]),
        )
        image.file.save(f"reference/{pool.pk}/{i:03d}.dcm", ContentFile(data), save=False)
        image.save()
        images.append(image)
    return images
