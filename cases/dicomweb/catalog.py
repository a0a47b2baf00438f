"""The searchable index behind DICOMweb: one row per instance, from both sources.

Synthetic instances (Study/Series/Instance rows) and reference images (ReferenceImage rows)
hold the same facts under different field paths; ``SOURCES`` names them, so that one QIDO
matcher filters both in the database and one grouping builds study and series results.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from pydicom.uid import ExplicitVRLittleEndian

from cases.dicomweb.access import visible_instances, visible_reference_images
from cases.models import ReferencePool

# alias -> field path, per source. Aliases a source lacks read as empty.
SYNTHETIC = {
    "study_uid": "series__study__study_uid",
    "study_date": "series__study__study_date",
    "accession": "series__study__accession_number",
    "study_description": "series__study__description",
    "patient_id": "series__study__patient__patient_id",
    "patient_name": "series__study__patient__patient_name",
    "patient_sex": "series__study__patient__sex",
    "patient_birth_date": "series__study__patient__birth_date",
    "series_uid": "series__series_uid",
    "modality": "series__modality",
    "series_number": "series__series_number",
    "series_description": "series__description",
    "sop_uid": "sop_instance_uid",
    "sop_class_uid": "sop_class_uid",
    "instance_number": "instance_number",
    "file": "file",
    "size": "size",
}
REFERENCE = {
    "study_uid": "study_uid",
    "study_date": "study_date",
    "study_description": "pool__name",
    "patient_id": "patient_id",
    "patient_name": "patient_id",
    "series_uid": "series_uid",
    "modality": "modality",
    "series_number": "series_number",
    "sop_uid": "sop_instance_uid",
    "sop_class_uid": "sop_class_uid",
    "instance_number": "instance_number",
    "rows": "rows",
    "columns": "columns",
    "frames": "frames",
    "transfer_syntax": "transfer_syntax_uid",
    "file": "file",
    "size": "size",
}
ALIASES = sorted(set(SYNTHETIC) | set(REFERENCE))


class QueryError(ValueError):
    """A search parameter that cannot be understood (answered with 400)."""


@dataclass(frozen=True)
class Matcher:
    """One QIDO matching key: ``kind`` is uid, text, name, date, int or study_modality."""

    alias: str
    kind: str
    value: str

    def lookups(self, paths: dict[str, str]) -> dict[str, Any] | None:
        """Django filter kwargs on one source, or None when the source cannot match."""
        alias = "modality" if self.kind == "study_modality" else self.alias
        if alias not in paths:
            return {} if self.value.strip("*") == "" else None
        path = paths[alias]
        match self.kind:
            case "uid" | "study_modality":
                return {f"{path}__in": split_list(self.value)}
            case "date":
                return date_lookups(path, self.value)
            case "int":
                try:
                    return {path: int(self.value)}
                except ValueError:
                    raise QueryError(f"{self.alias} must be a whole number") from None
            case _:
                return text_lookups(path, self.value, ignore_case=self.kind == "name")


# QIDO attribute keyword -> (alias, kind)
MATCHING = {
    "StudyInstanceUID": ("study_uid", "uid"),
    "SeriesInstanceUID": ("series_uid", "uid"),
    "SOPInstanceUID": ("sop_uid", "uid"),
    "SOPClassUID": ("sop_class_uid", "uid"),
    "PatientID": ("patient_id", "text"),
    "PatientName": ("patient_name", "name"),
    "AccessionNumber": ("accession", "text"),
    "StudyDescription": ("study_description", "name"),
    "SeriesDescription": ("series_description", "name"),
    "StudyDate": ("study_date", "date"),
    "Modality": ("modality", "text"),
    "ModalitiesInStudy": ("modality", "study_modality"),
    "SeriesNumber": ("series_number", "int"),
    "InstanceNumber": ("instance_number", "int"),
}


def split_list(value: str) -> list[str]:
    """UID list matching: values separated by backslash (DICOM) or comma (QIDO)."""
    return [v.strip() for v in re.split(r"[\\,]", value) if v.strip()]


def text_lookups(path: str, value: str, *, ignore_case: bool) -> dict[str, Any]:
    if "*" in value or "?" in value:
        pattern = "^" + re.escape(value).replace(r"\*", ".*").replace(r"\?", ".") + "$"
        return {f"{path}__{'iregex' if ignore_case else 'regex'}": pattern}
    return {f"{path}__{'iexact' if ignore_case else 'exact'}": value}


def parse_da(value: str) -> datetime.date:
    try:
        return datetime.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise QueryError(f"{value!r} is not a DICOM date (YYYYMMDD)") from None


def date_lookups(path: str, value: str) -> dict[str, Any]:
    """A DA value or range: ``D``, ``D1-D2``, ``-D2`` or ``D1-``."""
    if "-" not in value:
        return {path: parse_da(value)}
    start, _, end = value.partition("-")
    if not start and not end:
        raise QueryError("a date range needs at least one end")
    lookups: dict[str, Any] = {}
    if start:
        lookups[f"{path}__gte"] = parse_da(start)
    if end:
        lookups[f"{path}__lte"] = parse_da(end)
    return lookups


def _filtered(queryset: QuerySet, paths: dict[str, str], matchers: Iterable[Matcher]) -> QuerySet:
    base = queryset
    for matcher in matchers:
        lookups = matcher.lookups(paths)
        if lookups is None:
            return queryset.none()
        if matcher.kind == "study_modality":
            studies = base.filter(**lookups).values(paths["study_uid"])
            queryset = queryset.filter(**{f"{paths['study_uid']}__in": studies})
        else:
            queryset = queryset.filter(**lookups)
    return queryset


def instance_rows(
    user: Any, matchers: Iterable[Matcher], pool: ReferencePool | None = None
) -> list[dict[str, Any]]:
    """Every instance the user may reach that satisfies all matchers, as alias dicts."""
    matchers = list(matchers)
    sources: list[tuple[QuerySet, dict[str, str], dict[str, Any]]] = [
        (
            visible_reference_images(user, pool),
            REFERENCE,
            {"source": "reference"},
        )
    ]
    if pool is None:
        synthetic_defaults = {"source": "synthetic", "transfer_syntax": ExplicitVRLittleEndian}
        sources.insert(0, (visible_instances(user), SYNTHETIC, synthetic_defaults))
    rows: list[dict[str, Any]] = []
    for queryset, paths, defaults in sources:
        filtered = _filtered(queryset, paths, matchers)
        for values in filtered.values(*sorted(set(paths.values()))):
            row = dict.fromkeys(ALIASES)
            row.update(defaults)
            row.update({alias: values[path] for alias, path in paths.items()})
            rows.append(row)
    rows.sort(key=_order)
    return rows


def _order(row: dict[str, Any]) -> tuple:
    return (
        row["patient_id"] or "",
        row["study_date"] or datetime.date.min,
        row["study_uid"],
        row["series_number"] or 0,
        row["series_uid"],
        row["instance_number"] or 0,
        row["sop_uid"],
    )


def group(rows: list[dict[str, Any]], key: str) -> list[list[dict[str, Any]]]:
    """Rows grouped by ``key`` (study_uid or series_uid), in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return list(groups.values())
