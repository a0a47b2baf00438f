"""Teaching files after IHE Teaching File and Clinical Trial Export (TCE): export a case and
import one back into a reference pool with its key.

A teaching file is DICOM media (a zip with a DICOMDIR) holding:

- every image and lesion SEG of the case, as stored;
- an SR measurement report (TID 1500, Comprehensive 3D SR, written with highdicom): one
  measurement group per timepoint, tracked as "timepoint N", carrying the answer key: the
  diagnosis (DCM 121073 "Impression", coded with the template's finding), the lesion type as
  the finding type, the lesion's severity, and where the image shows a lesion, its frame in
  the SEG with the lesion's area (mm²) and long axis (mm);
- a Key Object Selection document titled "For Teaching" (DCM 113004), the TCE manifest,
  selecting the images and the SR; its Key Object Description gives the diagnosis, history,
  findings, discussion and teaching points in words.

SR and manifest go into the last timepoint's study, as series of their own, and say
Synthetic Data = YES like the images they describe. Gantry's own concepts (the finding as
the template names it, the generator's severity) use the local coding scheme ``99GANTRY``.
UIDs are derived from the case, so exporting a case twice gives the same objects.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
from pydicom import Dataset, dcmread
from pydicom.fileset import FileSet
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from cases.models import Instance, LesionGroundTruth, Study, SyntheticPatient
from genworker.dicom import LESION_CODES, MANUFACTURER, fit_lo, uid_from

LOCAL_SCHEME = "99GANTRY"
SEVERITY = Code("severity", LOCAL_SCHEME, "Lesion severity")
IMPRESSION = Code("121073", "DCM", "Impression")  # the diagnosis: the answer key
NO_UNITS = Code("1", "UCUM", "no units")
FOR_TEACHING = codes.DCM.ForTeaching  # 113004
SR_SERIES_NUMBER = 900
KOS_SERIES_NUMBER = 901
SR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


@dataclass(frozen=True)
class Timepoint:
    """One timepoint of a case as the export needs it."""

    number: int
    severity: float
    image: Dataset
    segmentation: Dataset | None  # the lesion SEG, when this image has one


@dataclass(frozen=True)
class CaseText:
    finding: str
    diagnosis: str
    history: str
    findings_text: str
    discussion: str
    teaching_points: str


def _read(instance: Instance) -> Dataset:
    with instance.file.open("rb") as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(fh)


def case_timepoints(case: SyntheticPatient) -> list[Timepoint]:
    """Each timepoint's image (and SEG, if any) as stored, in time order."""
    truths = {
        t.image_id: t.segmentation
        for t in LesionGroundTruth.objects.filter(
            image__series__study__patient=case
        ).select_related("segmentation")
    }
    out = []
    for study in Study.objects.filter(patient=case).order_by("timepoint"):
        image = (
            Instance.objects.filter(series__study=study)
            .exclude(series__modality="SEG")
            .order_by("series__series_number", "instance_number")
            .first()
        )
        if image is None:
            continue
        seg = truths.get(image.pk)
        out.append(Timepoint(study.timepoint, study.severity, _read(image), seg and _read(seg)))
    return out


def case_text(case: SyntheticPatient) -> CaseText:
    version = case.template_version
    return CaseText(
        finding=version.finding,
        diagnosis=version.diagnosis,
        history=case.history,
        findings_text=version.findings_text,
        discussion=version.discussion,
        teaching_points=version.teaching_points,
    )


# --- measurements ---------------------------------------------------------------------------


def pixel_spacing(image: Dataset) -> tuple[float, float]:
    """(row, column) spacing in mm: Pixel Spacing, else Imager Pixel Spacing (radiographs)."""
    spacing = image.get("PixelSpacing") or image.get("ImagerPixelSpacing")
    if not spacing:
        raise ValueError("the image has no pixel spacing: lesions cannot be measured in mm")
    return float(spacing[0]), float(spacing[1])


def lesion_mask(segmentation: Dataset) -> np.ndarray:
    frames = segmentation.pixel_array
    return np.asarray(frames, dtype=bool).reshape(frames.shape[-2:])


def long_axis_mm(mask: np.ndarray, spacing: tuple[float, float]) -> float:
    """The longest distance between the centres of two lesion pixels, in mm."""
    points = np.argwhere(mask) * np.asarray(spacing)
    if len(points) < 2:
        return 0.0
    if len(points) > 3:
        # All on one line, there is no hull: the farthest pair is among all the points.
        with contextlib.suppress(QhullError):
            points = points[ConvexHull(points).vertices]
    return float(pdist(points).max())


def area_mm2(mask: np.ndarray, spacing: tuple[float, float]) -> float:
    return float(mask.sum() * spacing[0] * spacing[1])


# --- the SR (TID 1500) ----------------------------------------------------------------------


def finding_code(text: CaseText) -> Code:
    return Code(fit_lo(text.finding)[:16], LOCAL_SCHEME, fit_lo(text.diagnosis or text.finding))


def _timepoint_group(point: Timepoint, text: CaseText, uid: str) -> Any:
    tracking = hd.sr.TrackingIdentifier(uid=uid, identifier=f"timepoint {point.number}")
    evaluations = [hd.sr.QualitativeEvaluation(IMPRESSION, finding_code(text))]
    measurements = [hd.sr.Measurement(SEVERITY, round(point.severity, 6), NO_UNITS)]
    lesion_type = LESION_CODES.get(text.finding, codes.SCT.Lesion)
    time_point = hd.sr.TimePointContext(time_point=str(point.number))
    seg = point.segmentation
    mask = lesion_mask(seg) if seg is not None else None
    if mask is None or not mask.any():
        return hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,
            time_point_context=time_point,
            finding_type=lesion_type,
            measurements=measurements,
            qualitative_evaluations=evaluations,
            source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(point.image)],
        )
    spacing = pixel_spacing(point.image)
    measurements += [
        hd.sr.Measurement(
            codes.SCT.Area, round(area_mm2(mask, spacing), 3), codes.UCUM.SquareMillimeter
        ),
        hd.sr.Measurement(
            codes.SCT.LongAxis, round(long_axis_mm(mask, spacing), 3), codes.UCUM.Millimeter
        ),
    ]
    segment = hd.sr.ReferencedSegmentationFrame(
        sop_class_uid=seg.SOPClassUID,
        sop_instance_uid=seg.SOPInstanceUID,
        frame_number=1,
        segment_number=1,
        source_image=hd.sr.SourceImageForSegmentation.from_source_image(point.image),
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        referenced_segment=segment,
        time_point_context=time_point,
        finding_type=lesion_type,
        measurements=measurements,
        qualitative_evaluations=evaluations,
    )


def _device_context(patient_id: str) -> hd.sr.ObservationContext:
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=uid_from(patient_id, "teaching-file", "observer"),
            name="Gantry",
            manufacturer_name=MANUFACTURER,
        ),
    )
    return hd.sr.ObservationContext(observer_device_context=device)


def _evidence(points: list[Timepoint]) -> list[Dataset]:
    """Images and SEGs, the last timepoint's first: the SR and manifest join its study."""
    ordered = [*points[-1:], *points[:-1]]
    return [ds for p in ordered for ds in (p.image, p.segmentation) if ds is not None]


def measurement_report(points: list[Timepoint], text: CaseText) -> Dataset:
    patient_id = str(points[0].image.PatientID)
    groups = [
        _timepoint_group(p, text, uid_from(patient_id, "teaching-file", "tracking", p.number))
        for p in points
    ]
    report = hd.sr.MeasurementReport(
        observation_context=_device_context(patient_id),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=_evidence(points),
        content=report,
        series_instance_uid=uid_from(patient_id, "teaching-file", "sr-series"),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=uid_from(patient_id, "teaching-file", "sr"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=True,
        series_description="Teaching file answer key",
        content_date=_content_date(points),
        content_time="000000",
    )
    _segment_references_by_frame(sr.ContentSequence)
    return _mark_synthetic(sr)


def _content_date(points: list[Timepoint]) -> str:
    return str(points[-1].image.get("StudyDate") or date.today().strftime("%Y%m%d"))


def _mark_synthetic(ds: Dataset) -> Dataset:
    """Synthetic Data = YES, and the local coding scheme identified."""
    ds.SyntheticData = "YES"
    scheme = Dataset()
    scheme.CodingSchemeDesignator = LOCAL_SCHEME
    scheme.CodingSchemeName = "Gantry local codes"
    scheme.CodingSchemeResponsibleOrganization = "Gantry"
    ds.CodingSchemeIdentificationSequence = [scheme]
    return ds


def _segment_references_by_frame(items: Any) -> None:
    """A reference to a SEG frame names the frame and then no segment (PS3.3 Table 10-3: the
    frame implies its segment); highdicom writes both, so the segment number goes."""
    for item in items:
        for ref in item.get("ReferencedSOPSequence", []):
            if ref.ReferencedSOPClassUID == SEG_SOP_CLASS and "ReferencedFrameNumber" in ref:
                ref.pop("ReferencedSegmentNumber", None)
        _segment_references_by_frame(item.get("ContentSequence", []))


# --- the manifest (KOS "For Teaching") ------------------------------------------------------


def key_object_description(text: CaseText) -> str:
    parts = [
        ("Diagnosis", text.diagnosis),
        ("History", text.history),
        ("Findings", text.findings_text),
        ("Discussion", text.discussion),
        ("Teaching points", text.teaching_points),
    ]
    body = "\n".join(f"{label}: {value.strip()}" for label, value in parts if value.strip())
    return f"Synthetic case made by Gantry.\n{body}"


def manifest(points: list[Timepoint], sr: Dataset, text: CaseText) -> Dataset:
    """The Key Object Selection "For Teaching", selecting every image and the SR.

    highdicom writes the evidence of one study only; a case spans a study per timepoint,
    so the document is made over its own study and then given the whole selection and the
    evidence of every study it references.
    """
    patient_id = str(points[0].image.PatientID)
    selected = [p.image for p in points] + [sr]
    own_study = [ds for ds in selected if ds.StudyInstanceUID == sr.StudyInstanceUID]
    description = key_object_description(text)
    kos = hd.ko.KeyObjectSelectionDocument(
        evidence=own_study,
        content=hd.ko.KeyObjectSelection(FOR_TEACHING, own_study, description=description),
        series_instance_uid=uid_from(patient_id, "teaching-file", "kos-series"),
        series_number=KOS_SERIES_NUMBER,
        sop_instance_uid=uid_from(patient_id, "teaching-file", "kos"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description="For Teaching",
        content_date=_content_date(points),
        content_time="000000",
    )
    whole = hd.ko.KeyObjectSelection(FOR_TEACHING, selected, description=description)
    for tag, value in whole[0].items():
        kos[tag] = value
    same, others = hd.sr.utils.collect_evidence(selected, whole[0], kos.StudyInstanceUID)
    kos.CurrentRequestedProcedureEvidenceSequence = [*same, *others]
    return _mark_synthetic(kos)


# --- the package ----------------------------------------------------------------------------


def teaching_file_datasets(case: SyntheticPatient) -> list[Dataset]:
    """Every object of the teaching file: images, SEGs, the SR, the manifest."""
    points = case_timepoints(case)
    if not points:
        raise ValueError("the case has no images to export")
    text = case_text(case)
    sr = measurement_report(points, text)
    kos = manifest(points, sr, text)
    objects = [ds for p in points for ds in (p.image, p.segmentation) if ds is not None]
    return [*objects, sr, kos]


def export_teaching_file(case: SyntheticPatient) -> bytes:
    """The teaching file as a zip of DICOM media (files and a DICOMDIR)."""
    fileset = FileSet()
    fileset.ID = "TEACHING"
    for ds in teaching_file_datasets(case):
        fileset.add(_as_file(ds))
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder:
        fileset.write(folder)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _as_file(ds: Dataset) -> Dataset:
    """A dataset with file meta, as FileSet.add needs (highdicom's objects have it in place)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer)
