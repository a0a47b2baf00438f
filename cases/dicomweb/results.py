"""DICOM JSON (PS3.18 F.2) for QIDO-RS results and WADO-RS metadata."""

from __future__ import annotations

import datetime
import warnings
from typing import Any

from django.core.files.storage import default_storage
from pydicom import Dataset, dcmread
from pydicom.datadict import keyword_for_tag, tag_for_keyword

# Binary values above this size are left out of metadata (pixel data is fetched as frames).
BULK_THRESHOLD = 64 * 1024
BULK_VRS = ("OB", "OD", "OF", "OL", "OV", "OW", "UN")
# Attributes ``includefield=all`` adds at study and series level, read from a stored header.
STUDY_EXTRA = (
    "StudyTime",
    "StudyID",
    "ReferringPhysicianName",
    "PatientAge",
    "PatientSex",
    "PatientBirthDate",
    "InstitutionName",
)
SERIES_EXTRA = ("SeriesDate", "SeriesTime", "BodyPartExamined", "ProtocolName", "Laterality")


def _da(value: datetime.date | None) -> str:
    return value.strftime("%Y%m%d") if value else ""


def study_dataset(rows: list[dict[str, Any]], base: str) -> Dataset:
    first = rows[0]
    ds = Dataset()
    ds.StudyInstanceUID = first["study_uid"]
    ds.StudyDate = _da(first["study_date"])
    ds.StudyTime = ""
    ds.AccessionNumber = first["accession"] or ""
    ds.ModalitiesInStudy = sorted({row["modality"] for row in rows if row["modality"]})
    ds.ReferringPhysicianName = ""
    ds.PatientName = first["patient_name"] or ""
    ds.PatientID = first["patient_id"] or ""
    ds.PatientBirthDate = _da(first["patient_birth_date"])
    ds.PatientSex = first["patient_sex"] or ""
    ds.StudyID = ""
    ds.StudyDescription = (first["study_description"] or "")[:64]
    ds.NumberOfStudyRelatedSeries = len({row["series_uid"] for row in rows})
    ds.NumberOfStudyRelatedInstances = len(rows)
    ds.RetrieveURL = f"{base}/studies/{first['study_uid']}"
    return ds


def series_dataset(rows: list[dict[str, Any]], base: str) -> Dataset:
    first = rows[0]
    ds = Dataset()
    ds.StudyInstanceUID = first["study_uid"]
    ds.SeriesInstanceUID = first["series_uid"]
    ds.Modality = first["modality"] or ""
    ds.SeriesNumber = first["series_number"]
    ds.SeriesDescription = (first["series_description"] or "")[:64]
    ds.NumberOfSeriesRelatedInstances = len(rows)
    ds.RetrieveURL = f"{base}/studies/{first['study_uid']}/series/{first['series_uid']}"
    return ds


def instance_url(row: dict[str, Any], base: str) -> str:
    return (
        f"{base}/studies/{row['study_uid']}/series/{row['series_uid']}/instances/{row['sop_uid']}"
    )


def instance_dataset(row: dict[str, Any], base: str) -> Dataset:
    ds = Dataset()
    ds.StudyInstanceUID = row["study_uid"]
    ds.SeriesInstanceUID = row["series_uid"]
    ds.Modality = row["modality"] or ""
    ds.SOPClassUID = row["sop_class_uid"]
    ds.SOPInstanceUID = row["sop_uid"]
    ds.InstanceNumber = row["instance_number"]
    ds.InstanceAvailability = "ONLINE"
    if row["rows"]:
        ds.Rows, ds.Columns, ds.NumberOfFrames = row["rows"], row["columns"], row["frames"]
    ds.AvailableTransferSyntaxUID = row["transfer_syntax"]
    ds.RetrieveURL = instance_url(row, base)
    return ds


def read_header(row: dict[str, Any]) -> Dataset:
    """The stored file's header (no pixel data)."""
    with default_storage.open(row["file"], "rb") as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(fh, stop_before_pixels=True)


def parse_includefields(values: list[str]) -> set[int] | str:
    """``includefield`` values (repeated or comma-separated): 'all' or a set of tags."""
    tags: set[int] = set()
    for value in values:
        for item in filter(None, (v.strip() for v in value.split(","))):
            if item == "all":
                return "all"
            tags.add(to_tag(item))
    return tags


def to_tag(key: str) -> int:
    """A keyword (PatientID) or hex tag (00100020) as a tag; ValueError when neither."""
    tag = tag_for_keyword(key)
    if tag is not None:
        return tag
    if len(key) == 8:
        try:
            tag = int(key, 16)
        except ValueError:
            pass
        else:
            if keyword_for_tag(tag) or tag >> 16 & 1:
                return tag
    raise ValueError(f"{key!r} is not a DICOM attribute keyword or tag")


def add_fields(ds: Dataset, header: Dataset, tags: set[int] | str, level: str) -> None:
    """Copy the requested attributes that ``ds`` lacks from a stored header."""
    if tags == "all":
        if level == "instance":
            wanted = [elem.tag for elem in header]
        else:
            extra = STUDY_EXTRA if level == "study" else SERIES_EXTRA
            wanted = [tag_for_keyword(keyword) for keyword in extra]
    else:
        wanted = list(tags)
    for tag in wanted:
        if tag in header and tag not in ds and not _is_bulk(header[tag]):
            ds.add(header[tag])


def _is_bulk(elem: Any) -> bool:
    return elem.VR in BULK_VRS and len(elem.value or b"") > BULK_THRESHOLD


def metadata(row: dict[str, Any], base: str) -> dict[str, Any]:
    """WADO-RS metadata of one instance: the stored header, bulk data left out."""
    header = read_header(row)
    for elem in list(header):
        if _is_bulk(elem):
            del header[elem.tag]
    header.AvailableTransferSyntaxUID = row["transfer_syntax"]
    header.RetrieveURL = instance_url(row, base)
    return to_json(header)


def to_json(ds: Dataset) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ds.to_json_dict()
