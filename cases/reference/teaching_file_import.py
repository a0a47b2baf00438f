"""Importing a teaching file (IHE TCE) into a reference pool, with its key.

A teaching file is recognised by its manifest, a Key Object Selection document titled "For
Teaching" (DCM 113004). The images it selects are imported as the pool's images (validated
and de-identified like any import); each row keeps the key the SR measurement report
(TID 1500) gives its image: the finding and the diagnosis, the timepoint, the severity, the
lesion's area and long axis. SEGs, the SR and the manifest themselves are read, not stored.

Synthetic cases (Synthetic Data = YES) go only into pools that hold synthetic teaching
files: a real pool is the real side of Turing studies, where a synthetic image would pass for
real. The check refuses the whole teaching file with that reason, before anything is stored.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import highdicom as hd
from pydicom import Dataset, dcmread

from cases.imaging.teaching_file import (
    FOR_TEACHING,
    IMPRESSION,
    KOS_SOP_CLASS,
    SEG_SOP_CLASS,
    SEVERITY,
)
from cases.models import ReferenceImage, ReferencePool
from cases.reference.dicom_import import (
    Duplicate,
    FileInput,
    ImportReport,
    Progress,
    Refused,
    expand,
    import_one,
    is_synthetic,
)

SR_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
}
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
AREA, LONG_AXIS = "42798000", "103339001"  # SCT codes of the measurements


@dataclass(frozen=True)
class ImageKey:
    """What a teaching file's SR says about one image."""

    finding: str
    diagnosis: str
    timepoint: int | None
    severity: float | None
    area_mm2: float | None
    long_axis_mm: float | None


def _read_header(data: bytes) -> Dataset | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dcmread(io.BytesIO(data), force=data[:2] == b"\x02\x00")
    except Exception:  # not DICOM, truncated, ...: judged again, with a reason, on import
        return None


def _sop_class(ds: Dataset) -> str | None:
    """The SOP class; a DICOMDIR names its own only in the file meta."""
    meta = getattr(ds, "file_meta", None)
    return ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)


def _title(ds: Dataset) -> tuple[str, str] | None:
    names = ds.get("ConceptNameCodeSequence")
    if not names:
        return None
    return (str(names[0].CodeValue), str(names[0].CodingSchemeDesignator))


def is_manifest(ds: Dataset) -> bool:
    return ds.get("SOPClassUID") == KOS_SOP_CLASS and _title(ds) == (
        FOR_TEACHING.value,
        FOR_TEACHING.scheme_designator,
    )


def selected_uids(manifest: Dataset) -> set[str]:
    """SOP Instance UIDs of the objects the manifest selects."""
    return {
        str(ref.ReferencedSOPInstanceUID)
        for item in manifest.get("ContentSequence", [])
        for ref in item.get("ReferencedSOPSequence", [])
    }


def _image_uid(group: Any) -> str | None:
    for item in group[0].ContentSequence:
        for ref in item.get("ReferencedSOPSequence", []):
            if item.ValueType == "IMAGE" and ref.ReferencedSOPClassUID != SEG_SOP_CLASS:
                return str(ref.ReferencedSOPInstanceUID)
    return None


def _timepoint(group: Any) -> int | None:
    for item in group[0].ContentSequence:
        meaning = item.ConceptNameCodeSequence[0].CodeMeaning
        if item.ValueType == "TEXT" and meaning == "Time Point":
            try:
                return int(item.TextValue)
            except ValueError:
                return None
    return None


def _group_key(group: Any) -> ImageKey:
    values = {m.name.value: float(m.value) for m in group.get_measurements()}
    impressions = group.get_qualitative_evaluations(name=IMPRESSION)
    code = impressions[0].value if impressions else None
    return ImageKey(
        finding=str(code.value) if code else "",
        diagnosis=str(code.meaning) if code else "",
        timepoint=_timepoint(group),
        severity=values.get(SEVERITY.value),
        area_mm2=values.get(AREA),
        long_axis_mm=values.get(LONG_AXIS),
    )


def read_key(sr: Dataset) -> dict[str, ImageKey]:
    """The key of each image the SR measurement report (TID 1500) describes, by the image's
    SOP Instance UID; raises Refused when the SR is no measurement report."""
    try:
        report = hd.sr.Comprehensive3DSR.from_dataset(sr).content
        groups = [
            *report.get_planar_roi_measurement_groups(),
            *report.get_image_measurement_groups(),
        ]
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise Refused(f"the SR is not a measurement report (TID 1500): {exc}") from None
    keys = {}
    for group in groups:
        uid = _image_uid(group)
        if uid is not None:
            keys[uid] = _group_key(group)
    return keys


@dataclass
class _Package:
    manifest: Dataset | None = None
    reports: list[Dataset] | None = None
    images: list[tuple[str, bytes, Dataset]] | None = None


def _sort(members: Iterable[tuple[str, bytes | Refused]], report: ImportReport) -> _Package:
    package = _Package(reports=[], images=[])
    for name, data in members:
        if isinstance(data, Refused):
            report.refused.append((name, data.reason))
            continue
        ds = _read_header(data)
        sop_class = None if ds is None else _sop_class(ds)
        if sop_class in (DICOMDIR_SOP_CLASS, SEG_SOP_CLASS):
            continue
        if ds is not None and is_manifest(ds):
            package.manifest = ds
        elif sop_class in SR_SOP_CLASSES:
            package.reports.append(ds)
        elif ds is not None and sop_class != KOS_SOP_CLASS:
            package.images.append((name, data, ds))
    return package


def _keys(package: _Package, selected: set[str]) -> dict[str, ImageKey]:
    reports = [r for r in package.reports if str(r.SOPInstanceUID) in selected]
    if not reports:
        raise Refused("the manifest selects no SR measurement report: the teaching file has no key")
    keys: dict[str, ImageKey] = {}
    for sr in reports:
        keys.update(read_key(sr))
    return keys


def _row_fields(key: ImageKey | None) -> dict[str, Any]:
    if key is None:
        return {}
    return {"finding": key.finding[:64], "severity": key.severity, "teaching_key": asdict(key)}


def import_teaching_file(
    pool: ReferencePool,
    files: Iterable[FileInput],
    user: Any,
    *,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the images a teaching file selects into ``pool``, each with its key.

    A file set that is no teaching file, has no key, or (into a real pool) is synthetic is
    refused whole, with the reason, under the name "teaching file"."""
    report = ImportReport()
    package = _sort(expand(files), report)
    try:
        if package.manifest is None:
            raise Refused(
                "not a teaching file: no Key Object Selection document titled "
                "'For Teaching' (DCM 113004)"
            )
        selected = selected_uids(package.manifest)
        keys = _keys(package, selected)
        images = [i for i in package.images if str(i[2].SOPInstanceUID) in selected]
        if not images:
            raise Refused("none of the images the manifest selects is in the upload")
        if not pool.holds_synthetic and any(is_synthetic(ds) for _, _, ds in images):
            raise Refused(
                "a teaching file of a synthetic case (Synthetic Data = YES) goes into a pool "
                "that holds synthetic teaching files, not into this pool of real images"
            )
    except Refused as exc:
        report.refused.append(("teaching file", exc.reason))
        return report
    total = report.judged + len(images)
    for name, data, ds in images:
        fields = _row_fields(keys.get(str(ds.SOPInstanceUID)))
        try:
            report.imported.append(
                import_one(
                    pool,
                    name,
                    data,
                    user,
                    origin=ReferenceImage.Origin.TEACHING_FILE,
                    fields=fields,
                )
            )
        except Refused as exc:
            report.refused.append((name, exc.reason))
        except Duplicate:
            report.duplicates.append(name)
        if progress is not None:
            progress(report, total)
    return report
