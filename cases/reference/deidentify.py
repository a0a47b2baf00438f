"""De-identification of imported (real) DICOM: the Basic Application Confidentiality Profile
(PS3.15 Annex E, every attribute of Table E.1-1) with the Retain Longitudinal Temporal
Information with Modified Dates Option.

The table is the one ``dicom-anonymizer`` ships, by edition of the standard (``EDITION``): a
maintained, machine-made copy of Table E.1-1 as data, with no code of its own run here. Its
actions are applied by ``_Walker`` to the data set and to every item of every sequence:

- X (remove): deleted; X/D: deleted (a date: moved, as below); Z, Z/D, X/Z and X/Z/D:
  emptied, which keeps a type 2 attribute present and gives nothing away; D: a dummy value of
  its VR (a UID: replaced, as U);
- U: a UID replaced by one derived from it under the key (so a study keeps its series);
- private attributes, curve data and overlays: removed;
- the option: dates (DA, and the date of a DT) are kept, moved back by one number of days per
  patient, so intervals stay true; times are kept.
- PatientName and PatientID become one pseudonym per patient; attributes the table does not
  name are kept (K), among them the SOP Class and other registered UIDs.

Everything is derived from a key of its own (``GANTRY_PSEUDONYM_KEY`` and the pool), never
the site's SECRET_KEY: the same patient, study and series imported twice into one pool map to
the same pseudonyms, UIDs and date shift, while the originals cannot be recovered without the
key. The returned record names what was changed (attribute keyword -> action), never the
original values.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections import Counter
from functools import cache
from typing import Any

from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.tag import BaseTag
from pydicom.uid import UID, generate_uid

EDITION = "dicomfields_2026c"  # PS3.15 2026c, Table E.1-1
# The action applied for each of the table's categories (see the module docstring).
ACTIONS = {
    "X_TAGS": "X",
    "Z_TAGS": "Z",
    "D_TAGS": "D",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z",
    "X_Z_TAGS": "Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "Z",
    "X_Z_U_STAR_TAGS": "U*",
}
MAX_DATE_SHIFT_DAYS = 3650
DUMMY_TEXT = "ANONYMIZED"
DUMMY_BY_VR = {"DS": "0", "IS": "0", "AS": "000Y", "TM": "000000", "AE": "ANONYMIZED"}
NUMBER_VRS = ("US", "SS", "UL", "SL", "UV", "SV", "FL", "FD")
METHOD = "Gantry: PS3.15 basic profile (table 2026c), modified dates, new UIDs"
# DICOM CID 7050 codes for what was applied.
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)


@cache
def table() -> tuple[dict[int, str], tuple[tuple[int, int, int, int, str], ...]]:
    """Table E.1-1: action by tag, and (group, element, group mask, element mask, action)
    for the repeating groups (curves, overlays)."""
    database = dicom_anonymization_database_selector(EDITION)
    by_tag: dict[int, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for category, action in ACTIONS.items():
        for entry in database[category]:
            if len(entry) == 2:
                by_tag[int(BaseTag((entry[0] << 16) | entry[1]))] = action
            else:
                masked.append((*entry, action))
    return by_tag, tuple(masked)


def action_for(tag: int) -> str | None:
    """The table's action for ``tag`` (X, X/D, Z, D, U or U*), None for keep."""
    by_tag, masked = table()
    if tag in by_tag:
        return by_tag[tag]
    group, element = tag >> 16, tag & 0xFFFF
    for g, e, group_mask, element_mask, action in masked:
        if group & group_mask == g and element & element_mask == e & element_mask:
            return action
    return None


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


def _values(elem: DataElement) -> list[Any]:
    return list(elem.value) if elem.VM > 1 else [elem.value]


def _dummy(elem: DataElement) -> Any:
    if elem.VR == "SQ":
        return []
    if elem.VR in NUMBER_VRS:
        return 0
    if elem.VR.startswith("O") or elem.VR == "UN":
        return b""
    if elem.VR in DUMMY_BY_VR:
        return DUMMY_BY_VR[elem.VR]
    return DUMMY_TEXT


class _Walker:
    """Applies the table to one data set and every item of its sequences, counting."""

    def __init__(self, key: bytes, pseudonym: str, shift: int) -> None:
        self.key, self.pseudonym, self.shift = key, pseudonym, shift
        self.actions: dict[str, str] = {}
        self.removed: set[str] = set()
        self.counts: Counter[str] = Counter()

    def dataset(self, ds: Dataset) -> None:
        for elem in list(ds):
            if elem.tag.is_private:
                del ds[elem.tag]
                self.counts["private"] += 1
                continue
            self.element(ds, elem)
            if elem.tag in ds and elem.VR == "SQ":
                for item in elem.value:
                    self.dataset(item)

    def element(self, ds: Dataset, elem: DataElement) -> None:
        name = elem.keyword or str(elem.tag)
        action = action_for(int(elem.tag))
        if elem.keyword in ("PatientName", "PatientID"):
            elem.value = self.pseudonym
            self.actions[name] = "replaced by pseudonym"
        elif (elem.VR in ("DA", "DT") and action != "X") or elem.keyword == "PatientBirthDate":
            self._date(elem, name)
        elif action in ("X", "X/D"):
            del ds[elem.tag]
            self.removed.add(name)
        elif elem.VR == "UI" and action in ("U", "D"):
            self._uid(elem)
        elif action == "Z" and elem.value not in (None, "", b"", []):
            elem.value = [] if elem.VR == "SQ" else b"" if elem.VR.startswith("O") else ""
            self.actions[name] = "emptied"
        elif action == "D" and elem.VR not in ("TM",):
            elem.value = _dummy(elem)
            self.actions[name] = "replaced by a dummy"

    def _uid(self, elem: DataElement) -> None:
        if elem.value in (None, ""):
            return
        mapped = [remap_uid(self.key, str(v)) for v in _values(elem)]
        elem.value = mapped if elem.VM > 1 else mapped[0]
        self.counts["uids_remapped"] += len(mapped)

    def _date(self, elem: DataElement, name: str) -> None:
        if elem.value in (None, ""):
            return
        shift = _shift_da if elem.VR == "DA" else _shift_dt
        try:
            shifted = [shift(str(v), self.shift) for v in _values(elem)]
        except ValueError:
            shifted = [""]  # an unparseable date cannot be shifted: drop it
            self.actions[name] = "emptied (not a valid date)"
        else:
            self.actions[name] = "shifted"
        elem.value = shifted if len(shifted) > 1 else shifted[0]


def deidentify(ds: Dataset, key: bytes) -> dict[str, Any]:
    """De-identify ``ds`` in place; return the record of what was changed."""
    original_id = str(ds.get("PatientID", "") or "")
    walker = _Walker(key, pseudonym_id(key, original_id), date_shift_days(key, original_id))
    walker.dataset(ds)
    ds.PatientID = walker.pseudonym
    walker.actions["PatientID"] = "replaced by pseudonym"
    if "PatientName" not in ds or not ds.PatientName:
        ds.PatientName = walker.pseudonym
    _mark(ds)
    return {
        "attributes": dict(sorted(walker.actions.items())),
        "removed": sorted(walker.removed),
        "private_tags_removed": walker.counts["private"],
        "uids_remapped": walker.counts["uids_remapped"],
        "method": METHOD,
        "table": EDITION,
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
