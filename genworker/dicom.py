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
import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time

import highdicom as hd
import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
)
from pydicom.valuerep import format_number_as_ds

SOP_CLASS_FOR_MODALITY = {"MR": MRImageStorage, "DX": DigitalXRayImageStorageForPresentation}
BITS_STORED = 12
MAX_VALUE = 2**BITS_STORED - 1
MANUFACTURER = "Gantry (synthetic)"
UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "dicom.gantry.invalid")
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
    """A UID derived from ``parts``, so a retried job writes the same UIDs.

    Under the 2.25 root a UID is the integer of a UUID; a name-based (version 5) UUID of the
    parts is one. (pydicom's ``generate_uid(prefix=None)`` ignores its entropy sources and
    returns a random UUID.)
    """
    name = "\x1f".join(str(part) for part in parts)
    return f"2.25.{uuid.uuid5(UID_NAMESPACE, name).int}"


def to_stored_values(image: np.ndarray) -> np.ndarray:
    """Display intensities in [0, 1] -> unsigned 12-bit stored values (uint16)."""
    assert image.ndim == 2, "expected one [rows, cols] image"
    return np.round(np.clip(image, 0.0, 1.0) * MAX_VALUE).astype(np.uint16)


def window_strings(values: np.ndarray) -> tuple[str, str]:
    """Window Center and Width (DS) spanning the 1st to 99th percentile of stored values."""
    low, high = _percentiles(values, (0.01, 0.99))
    width = max(high - low, 1.0)
    return f"{low + width / 2:.1f}", f"{width:.1f}"


def _percentiles(values: np.ndarray, quantiles: tuple[float, ...]) -> list[float]:
    """``np.percentile``'s default (linear) quantiles of 12-bit stored values, to the bit,
    from their histogram: a fifth of the time on one image, which a worker spends on every
    image it writes."""
    counts = np.cumsum(np.bincount(values.ravel(), minlength=MAX_VALUE + 1))
    n = int(counts[-1])

    def order_statistic(rank: int) -> float:  # the rank-th smallest value, from 0
        return float(np.searchsorted(counts, rank, side="right"))

    results = []
    for quantile in quantiles:
        position = (n - 1) * quantile
        below = math.floor(position)
        gamma = position - below
        lower, upper = order_statistic(below), order_statistic(min(below + 1, n - 1))
        # numpy's interpolation, rounding included: from the nearer neighbour
        if gamma < 0.5:
            results.append(lower + (upper - lower) * gamma)
        else:
            results.append(upper - (upper - lower) * (1 - gamma))
    return results


def fit_lo(text: str) -> str:
    """At most 64 characters and 64 bytes of UTF-8 (the limit of LO).

    Part 5 counts characters; dciodvfy and some PACS count bytes, so a title with an em dash
    is cut to satisfy both.
    """
    return text.encode()[:64].decode("utf-8", "ignore")


def dicom_date(day: date) -> str:
    return day.strftime("%Y%m%d")


def dicom_time(moment: time | datetime) -> str:
    return moment.strftime("%H%M%S")


def dicom_datetime(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def age_string(birth_date: date, on: date) -> str:
    """Patient's Age (AS) in whole years on ``on``."""
    years = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    return f"{years:03d}Y"


def image_comments(header: ImageHeader) -> str:
    """Where an image came from, readable by any DICOM tool."""
    return (
        f"Synthetic; timepoint {header.timepoint}; severity {header.severity:.3f}; "
        f"seed {header.seed}"
    )


def dimension_organization_uid(segmentation_sop_uid: str) -> str:
    return uid_from(segmentation_sop_uid, "dimension-organization")


def _equipment_item(generator: GeneratorIdentity, when: datetime) -> Dataset:
    item = Dataset()
    item.Manufacturer = MANUFACTURER
    item.ManufacturerModelName = fit_lo(f"{generator.architecture}:{generator.name}")
    item.DeviceSerialNumber = generator.sha256[:64]
    item.SoftwareVersions = fit_lo(generator.software_version)
    item.ContributionDateTime = dicom_datetime(when)
    item.ContributionDescription = "Image synthesised by a generative model"
    item.PurposeOfReferenceCodeSequence = [_code_item(codes.DCM.SynthesizingEquipment)]
    return item


def _code_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
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
    ds.PatientBirthDate = dicom_date(patient.birth_date)
    ds.PatientSex = patient.sex
    ds.PatientAge = age_string(patient.birth_date, header.study_date)
    ds.StudyInstanceUID = header.study_uid
    ds.StudyDate = dicom_date(header.study_date)
    ds.StudyTime = dicom_time(header.study_time)
    ds.StudyID = f"T{header.timepoint}"
    ds.AccessionNumber = header.accession_number
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = fit_lo(header.study_description)
    ds.SeriesInstanceUID = header.series_uid
    ds.SeriesNumber = header.series_number
    ds.SeriesDescription = fit_lo(header.series_description)
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
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = values.shape
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.WindowCenter, ds.WindowWidth = window_strings(values)
    ds.PixelData = values.tobytes()
    ds.ImageComments = image_comments(header)


def _set_mr_module(ds: Dataset, header: ImageHeader) -> None:
    # The MR Image module requires a third value; no defined flavour fits a synthetic image.
    ds.ImageType = ["DERIVED", "PRIMARY", "OTHER"]
    ds.PatientPosition = ""  # Type 2C for MR: nobody lay in a scanner
    ds.ScanningSequence = "RM"  # research mode: no real pulse sequence produced this image
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = ""
    ds.EchoTime = ""
    ds.EchoTrainLength = ""
    ds.SliceThickness = f"{header.pixel_spacing_mm:.3f}"
    ds.PixelSpacing = [format_number_as_ds(header.pixel_spacing_mm)] * 2
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, 0]


def _set_dx_module(ds: Dataset, header: ImageHeader) -> None:
    ds.ImageType = ["DERIVED", "PRIMARY", ""]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.ImageLaterality = "U"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.DetectorType = ""
    ds.ImagerPixelSpacing = [format_number_as_ds(header.pixel_spacing_mm)] * 2
    ds.PixelSpacing = ds.ImagerPixelSpacing
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    ds.PixelSpacingCalibrationDescription = "Synthetic image: spacing assigned, not measured"
    ds.AnatomicRegionSequence = [_code_item(codes.SCT.Chest)]
    ds.PositionerType = ""
    ds.AcquisitionContextSequence = []
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
    ds.InstanceCreationDate = dicom_date(created)
    ds.InstanceCreationTime = dicom_time(created)
    ds.SyntheticData = "YES"
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = fit_lo(f"{generator.architecture}:{generator.name}")
    ds.SoftwareVersions = fit_lo(generator.software_version)
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
        segment_label=fit_lo(finding),
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=fit_lo(generator.name),
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
        manufacturer_model_name=fit_lo(f"{generator.architecture}:{generator.name}"),
        software_versions=fit_lo(generator.software_version),
        device_serial_number=generator.sha256[:64],
        series_description=fit_lo(f"Lesion ground truth ({finding})"),
        content_date=created.date(),
        content_time=created.time(),
        omit_empty_frames=False,
    )
    seg.SyntheticData = "YES"
    seg.ContributingEquipmentSequence = [_equipment_item(generator, created)]
    # highdicom stamps the wall clock and a random UID here; a retried case must write the
    # same bytes, so both derive from the request instead.
    seg.InstanceCreationDate = dicom_date(created)
    seg.InstanceCreationTime = dicom_time(created)
    dimensions_uid = dimension_organization_uid(sop_uid)
    for item in (*seg.DimensionOrganizationSequence, *seg.DimensionIndexSequence):
        item.DimensionOrganizationUID = dimensions_uid
    if "PatientOrientation" in image:  # a projection radiograph: no plane orientation to copy
        seg.PatientOrientation = image.PatientOrientation
        # Required in the SEG's pixel measures; a synthetic projection has no slab, so the
        # pixel spacing stands in, as SliceThickness does in the MR objects.
        measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        measures.SliceThickness = image.PixelSpacing[0]
    if (mask.size + 7) // 8 % 2:
        # highdicom pads an odd number of bytes with an ASCII "0"; Part 5 asks for a NUL.
        seg.PixelData = seg.PixelData[:-1] + b"\x00"
    return seg


def to_bytes(ds: Dataset) -> bytes:
    """The DICOM Part 10 file of ``ds``, its sequences and items of undefined length.

    Undefined lengths (as valid as explicit ones) mean that a value's length touches no
    enclosing length, which is what lets genworker.dicom_templates fill in values fast.
    """
    _undefine_sequence_lengths(ds)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _undefine_sequence_lengths(ds: Dataset) -> None:
    for element in ds:
        if element.VR == "SQ":
            element.is_undefined_length = True
            for item in element.value:
                item.is_undefined_length_sequence_item = True
                _undefine_sequence_lengths(item)
