"""Writing synthetic images as DICOM, marked synthetic and traceable to their generator.

SOP classes: brain images are written as **MR Image Storage** and chest radiographs as
**Digital X-Ray Image Storage - For Presentation**, so that viewers, hanging protocols and
PACS treat them as the modality they depict. Nothing was acquired, which the headers say
plainly: Synthetic Data (0008,001C) = YES, the generator listed in the Contributing
Equipment Sequence with purpose "Synthesizing Equipment" (DCM 109100), acquisition
attributes that have no true value left empty (they are Type 2), and Image Type DERIVED.
Secondary Capture would be valid too, but it drops the modality-specific modules that
viewers and the later Turing-test blinding rely on.

Lesion ground truth is a binary DICOM Segmentation written with highdicom, referencing
the image it segments, and itself marked synthetic.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, time

import highdicom as hd
import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

SOP_CLASS_FOR_MODALITY = {"MR": MRImageStorage, "DX": DigitalXRayImageStorageForPresentation}
BITS_STORED = 12
MAX_VALUE = 2**BITS_STORED - 1
MANUFACTURER = "Gantry (synthetic)"
LESION_CODES = {
    "glioma": codes.SCT.Neoplasm,
    "nodule": codes.SCT.Nodule,
    "effusion": codes.SCT.Effusion,
}


@dataclass(frozen=True)
class GeneratorIdentity:
    """What the Contributing Equipment Sequence says about the generator."""

    name: str
    architecture: str
    sha256: str
    software_version: str


@dataclass(frozen=True)
class PatientHeader:
    patient_id: str
    patient_name: str
    birth_date: date
    sex: str  # "F" or "M"


@dataclass(frozen=True)
class ImageHeader:
    modality: str  # "MR" or "DX"
    body_part: str  # DICOM Body Part Examined, e.g. "BRAIN", "CHEST"
    study_uid: str
    series_uid: str
    sop_uid: str
    frame_of_reference_uid: str
    study_date: date
    study_time: time
    accession_number: str
    study_description: str
    series_description: str
    series_number: int
    instance_number: int
    pixel_spacing_mm: float
    seed: int
    severity: float
    timepoint: int


def uid_from(*parts: object) -> str:
    """A UID derived from ``parts`` (under 2.25), so a retried job writes the same UIDs."""
    return generate_uid(prefix=None, entropy_srcs=[str(p) for p in parts])


def to_stored_values(image: np.ndarray) -> np.ndarray:
    """Display intensities in [0, 1] -> unsigned 12-bit stored values (uint16)."""
    assert image.ndim == 2, "expected one [rows, cols] image"
    return np.round(np.clip(image, 0.0, 1.0) * MAX_VALUE).astype(np.uint16)


def window_for(values: np.ndarray) -> tuple[float, float]:
    """Window centre and width spanning the 1st to 99th percentile of stored values."""
    low, high = np.percentile(values, [1, 99])
    width = max(float(high - low), 1.0)
    return float(low + width / 2), width


def _equipment_item(generator: GeneratorIdentity, when: datetime) -> Dataset:
    item = Dataset()
    item.Manufacturer = MANUFACTURER
    item.ManufacturerModelName = f"{generator.architecture}:{generator.name}"[:64]
    item.DeviceSerialNumber = generator.sha256[:64]
    item.SoftwareVersions = generator.software_version[:64]
    item.ContributionDateTime = when.strftime("%Y%m%d%H%M%S")
    item.ContributionDescription = "Image synthesised by a generative model"
    purpose = Dataset()
    code = codes.DCM.SynthesizingEquipment
    purpose.CodeValue = code.value
    purpose.CodingSchemeDesignator = code.scheme_designator
    purpose.CodeMeaning = code.meaning
    item.PurposeOfReferenceCodeSequence = [purpose]
    return item


def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def _set_patient_study_series(ds: Dataset, patient: PatientHeader, header: ImageHeader) -> None:
    ds.PatientName = patient.patient_name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d")
    ds.PatientSex = patient.sex
    age = (
        header.study_date.year
        - patient.birth_date.year
        - (
            (header.study_date.month, header.study_date.day)
            < (patient.birth_date.month, patient.birth_date.day)
        )
    )
    ds.PatientAge = f"{age:03d}Y"
    ds.StudyInstanceUID = header.study_uid
    ds.StudyDate = header.study_date.strftime("%Y%m%d")
    ds.StudyTime = header.study_time.strftime("%H%M%S")
    ds.StudyID = f"T{header.timepoint}"
    ds.AccessionNumber = header.accession_number
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = header.study_description[:64]
    ds.SeriesInstanceUID = header.series_uid
    ds.SeriesNumber = header.series_number
    ds.SeriesDescription = header.series_description[:64]
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = ds.StudyTime
    ds.Modality = header.modality
    ds.BodyPartExamined = header.body_part
    ds.FrameOfReferenceUID = header.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""


def _set_image_pixels(ds: Dataset, values: np.ndarray, header: ImageHeader) -> None:
    ds.InstanceNumber = header.instance_number
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = values.shape
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    centre, width = window_for(values)
    ds.WindowCenter = f"{centre:.1f}"
    ds.WindowWidth = f"{width:.1f}"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.PixelData = values.tobytes()
    # Where this image came from, readable by any DICOM tool.
    ds.ImageComments = (
        f"Synthetic; timepoint {header.timepoint}; severity {header.severity:.3f}; "
        f"seed {header.seed}"
    )


def _set_mr_module(ds: Dataset, header: ImageHeader) -> None:
    ds.ScanningSequence = "RM"  # research mode: no real pulse sequence produced this image
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = ""
    ds.EchoTime = ""
    ds.EchoTrainLength = ""
    ds.SliceThickness = f"{header.pixel_spacing_mm:.3f}"
    ds.PixelSpacing = [f"{header.pixel_spacing_mm:.4f}"] * 2
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, 0]
    ds.RescaleType = "US"


def _set_dx_module(ds: Dataset, header: ImageHeader) -> None:
    ds.ImageType = ["DERIVED", "PRIMARY", ""]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.ImageLaterality = "U"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.DetectorType = ""
    ds.ImagerPixelSpacing = [f"{header.pixel_spacing_mm:.4f}"] * 2
    ds.PixelSpacing = ds.ImagerPixelSpacing
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    ds.KVP = ""


def image_dataset(
    image: np.ndarray,  # display intensities [rows, cols] in [0, 1]
    *,
    patient: PatientHeader,
    header: ImageHeader,
    generator: GeneratorIdentity,
    created: datetime,
) -> Dataset:
    """The DICOM image object for one synthetic image."""
    sop_class = SOP_CLASS_FOR_MODALITY.get(header.modality)
    if sop_class is None:
        raise ValueError(f"no SOP class for modality {header.modality!r}")
    values = to_stored_values(image)
    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, header.sop_uid)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = header.sop_uid
    ds.InstanceCreationDate = created.strftime("%Y%m%d")
    ds.InstanceCreationTime = created.strftime("%H%M%S")
    ds.SyntheticData = "YES"
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = f"{generator.architecture}:{generator.name}"[:64]
    ds.SoftwareVersions = generator.software_version[:64]
    ds.DeviceSerialNumber = generator.sha256[:64]
    ds.ContributingEquipmentSequence = [_equipment_item(generator, created)]
    _set_patient_study_series(ds, patient, header)
    _set_image_pixels(ds, values, header)
    if header.modality == "MR":
        _set_mr_module(ds, header)
    else:
        _set_dx_module(ds, header)
    return ds


def segmentation_dataset(
    image: Dataset,
    mask: np.ndarray,  # bool [rows, cols], same grid as the image
    *,
    finding: str,
    series_uid: str,
    sop_uid: str,
    generator: GeneratorIdentity,
    created: datetime,
) -> Dataset:
    """A binary DICOM SEG of ``mask`` over ``image``, marked synthetic."""
    assert mask.shape == (image.Rows, image.Columns), "mask must match the image grid"
    lesion = LESION_CODES.get(finding, codes.SCT.Lesion)
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=finding[:64],
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=generator.name[:64],
            version=generator.sha256[:16],
            family=codes.DCM.ArtificialIntelligence,
        ),
    )
    seg = hd.seg.Segmentation(
        source_images=[image],
        pixel_array=mask[np.newaxis].astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=series_uid,
        series_number=image.SeriesNumber + 100,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=f"{generator.architecture}:{generator.name}"[:64],
        software_versions=generator.software_version[:64],
        device_serial_number=generator.sha256[:64],
        series_description=f"Lesion ground truth ({finding})"[:64],
        content_date=created.date(),
        content_time=created.time(),
        omit_empty_frames=False,
    )
    seg.SyntheticData = "YES"
    seg.ContributingEquipmentSequence = [_equipment_item(generator, created)]
    return seg


def to_bytes(ds: Dataset) -> bytes:
    """The DICOM Part 10 file of ``ds``."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
