"""De-identification of imported (real) DICOM, after the Basic Application Confidentiality
Profile (PS3.15 Annex E) with the "retain longitudinal temporal information, modified dates"
option.

Everything is derived from a secret key (the site's SECRET_KEY plus the pool), so the same
patient, study and series imported twice into one pool map to the same pseudonyms, UIDs and
date shift, which keeps studies grouped and intervals between dates true, while the originals
cannot be recovered without the key. The returned record names what was changed (attribute
keyword -> action), never the original values.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections import Counter
from typing import Any

from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.uid import UID, generate_uid

# Attributes that identify people, places or devices and that nothing in Gantry needs.
REMOVED = (
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientBirthName",
    "PatientMotherBirthName",
    "MedicalRecordLocator",
    "MilitaryRank",
    "Occupation",
    "AdditionalPatientHistory",
    "PatientComments",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "PhysiciansOfRecord",
    "RequestAttributesSequence",
    "DeviceSerialNumber",
    "StationName",
    "ImageComments",
    "PerformedProcedureStepID",
    "ScheduledProcedureStepID",
    "RequestingService",
    "CurrentPatientLocation",
    "PatientInsurancePlanCodeSequence",
)
# Type 2 attributes that must stay present, emptied.
EMPTIED = ("AccessionNumber", "StudyID", "InstitutionName")
KEPT_UIDS_PREFIX = "1.2.840.10008."  # DICOM-registered UIDs (SOP classes, syntaxes) are not PHI
MAX_DATE_SHIFT_DAYS = 3650
METHOD = "Gantry: basic profile, no private tags, new UIDs, dates shifted"
# DICOM CID 7050 codes for what was applied.
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)


def _digest(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


def pseudonym_id(key: bytes, patient_id: str) -> str:
    return f"REF-{_digest(key, 'patient', patient_id)[:12].upper()}"


def date_shift_days(key: bytes, patient_id: str) -> int:
    """Days every date of this patient moves back: 1 .. MAX_DATE_SHIFT_DAYS."""
    return 1 + int(_digest(key, "shift", patient_id)[:8], 16) % MAX_DATE_SHIFT_DAYS


def remap_uid(key: bytes, uid: str) -> str:
    return str(generate_uid(entropy_srcs=[_digest(key, "uid", uid)]))


def _shift_da(value: str, days: int) -> str:
    parsed = datetime.datetime.strptime(value.strip()[:8], "%Y%m%d")
    return (parsed - datetime.timedelta(days=days)).strftime("%Y%m%d")


def _shift_dt(value: str, days: int) -> str:
    # DT is YYYYMMDDHHMMSS.FFFFFF&ZZXX with everything after the year optional; only the date
    # part moves, the time and offset are kept as they were.
    text = value.strip()
    if len(text) < 8:
        return ""
    return _shift_da(text[:8], days) + text[8:]


class _Walker:
    """Applies the element rules to one dataset and its sequences, counting the actions."""

    def __init__(self, key: bytes, pseudonym: str, shift: int) -> None:
        self.key, self.pseudonym, self.shift = key, pseudonym, shift
        self.actions: dict[str, str] = {}
        self.counts: Counter[str] = Counter()

    def __call__(self, ds: Dataset, elem: DataElement) -> None:
        if elem.tag.is_private or elem.VR == "SQ" or elem.value in (None, "", b""):
            return
        if elem.VR == "UI":
            self._uid(elem)
        elif elem.keyword == "PatientName":
            elem.value = self.pseudonym
            self.actions["PatientName"] = "replaced by pseudonym"
        elif elem.VR == "PN":
            elem.value = ""
            self.actions[elem.keyword or str(elem.tag)] = "emptied"
        elif elem.VR in ("DA", "DT"):
            self._date(elem)

    def _uid(self, elem: DataElement) -> None:
        values = elem.value if elem.VM > 1 else [elem.value]
        if all(str(v).startswith(KEPT_UIDS_PREFIX) for v in values):
            return
        mapped = [
            v if str(v).startswith(KEPT_UIDS_PREFIX) else remap_uid(self.key, str(v))
            for v in values
        ]
        elem.value = mapped if elem.VM > 1 else mapped[0]
        self.counts["uids_remapped"] += len(values)

    def _date(self, elem: DataElement) -> None:
        shift = _shift_da if elem.VR == "DA" else _shift_dt
        values = elem.value if elem.VM > 1 else [elem.value]
        try:
            shifted = [shift(str(v), self.shift) for v in values]
        except ValueError:
            shifted = [""]  # an unparseable date cannot be shifted: drop it
            self.actions[elem.keyword or str(elem.tag)] = "emptied (not a valid date)"
        else:
            self.actions[elem.keyword or str(elem.tag)] = "shifted"
        elem.value = shifted if len(shifted) > 1 else shifted[0]


def deidentify(ds: Dataset, key: bytes) -> dict[str, Any]:
    """De-identify ``ds`` in place; return the record of what was changed."""
    original_id = str(ds.get("PatientID", "") or "")
    walker = _Walker(key, pseudonym_id(key, original_id), date_shift_days(key, original_id))
    private = sum(1 for elem in ds.iterall() if elem.tag.is_private)
    ds.remove_private_tags()
    removed = [keyword for keyword in REMOVED if keyword in ds]
    for keyword in removed:
        delattr(ds, keyword)
    ds.walk(walker)
    for keyword in EMPTIED:
        if ds.get(keyword):
            setattr(ds, keyword, "")
            walker.actions[keyword] = "emptied"
    ds.PatientID = walker.pseudonym
    walker.actions["PatientID"] = "replaced by pseudonym"
    if "PatientName" not in ds or not ds.PatientName:
        ds.PatientName = walker.pseudonym
    _mark(ds)
    return {
        "attributes": dict(sorted(walker.actions.items())),
        "removed": removed,
        "private_tags_removed": private,
        "uids_remapped": walker.counts["uids_remapped"],
        "method": METHOD,
    }


def _mark(ds: Dataset) -> None:
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    codes = []
    for value, meaning in METHOD_CODES:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = codes
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    if getattr(ds, "file_meta", None) is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
