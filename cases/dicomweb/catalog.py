"""The searchable index behind DICOMweb: one row per instance, from both sources.

Synthetic instances (Study/Series/Instance rows) and reference images (ReferenceImage rows)
hold the same facts under different field paths; ``SOURCES`` names them, so that one QIDO
matcher filters both in the database and one grouping builds study and series results.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import CharField, QuerySet, Value
from pydicom.uid import ExplicitVRLittleEndian

from cases.dicomweb.access import (
    access_filters,
    hidden_from,
    visible_instances,
    visible_reference_images,
)
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


# ---- locating files for WADO-RS ---------------------------------------------------------------

# What WADO-RS needs to send an instance's file: where it is, what it holds, its place in the
# study. Synthetic files are all written in Explicit VR Little Endian.
LOCATED = (
    "study_uid",
    "series_uid",
    "sop_uid",
    "series_number",
    "instance_number",
    "file",
    "size",
    "transfer_syntax",
)
# Stand-ins for the UIDs of a path while a plan is compiled (a URL UID is digits and dots).
_STUDY, _SERIES, _SOP = "\x00study\x00", "\x00series\x00", "\x00sop\x00"
PLAN_SECONDS = 10.0
PLAN_LIMIT = 1024


@dataclass(frozen=True)
class Plan:
    """The compiled SQL of one user's locate query, the path's UIDs left as stand-ins."""

    sql: str
    params: tuple[Any, ...]
    expires: float


_plans: OrderedDict[tuple, Plan] = OrderedDict()
_plans_lock = threading.Lock()


def _located(
    queryset: QuerySet, paths: dict[str, str], study: str, series: str | None, sop: str | None
) -> QuerySet:
    lookups = {paths["study_uid"]: study}
    if series is not None:
        lookups[paths["series_uid"]] = series
    if sop is not None:
        lookups[paths["sop_uid"]] = sop
    columns = [paths[alias] for alias in LOCATED[:-1]]
    if "transfer_syntax" in paths:
        columns.append(paths["transfer_syntax"])
    else:  # a constant, last (after the model's columns) as in the other source's query
        queryset = queryset.annotate(
            located_syntax=Value(ExplicitVRLittleEndian, output_field=CharField())
        )
        columns.append("located_syntax")
    return queryset.filter(**lookups).order_by().values_list(*columns)


def locate_query(
    user: Any,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    pool: ReferencePool | None = None,
) -> QuerySet | None:
    """One query over both sources for what a WADO-RS path names, with every permission rule
    (``visible_instances``, ``visible_reference_images``) a condition of it; None when the
    user can reach neither source."""
    hidden = hidden_from(user)
    queries = []
    if pool is None:
        queries.append(_located(visible_instances(user, hidden), SYNTHETIC, study, series, sop))
    references = visible_reference_images(user, pool, hidden)
    if not references.query.is_empty():
        queries.append(_located(references, REFERENCE, study, series, sop))
    if not queries:
        return None
    return queries[0].union(*queries[1:], all=True) if len(queries) > 1 else queries[0]


def _plan_key(user: Any, pool: ReferencePool | None, series: bool, sop: bool) -> tuple:
    """Everything but the database that the rules may read: who the user is, their permissions
    (read on every request, so a change of role applies at once), the filters registered."""
    return (
        connection.alias,
        user.pk,
        user.is_active,
        user.is_superuser,
        user.is_staff,
        frozenset(user.get_all_permissions()),
        pool.pk if pool is not None else None,
        series,
        sop,
        tuple(access_filters()),
    )


def _compile(user: Any, pool: ReferencePool | None, series: bool, sop: bool) -> Plan | None:
    """The plan of ``locate_query`` for this user and path shape, or None when it cannot be
    reused: the rules ran a query while being built (they read the database in Python, not in
    SQL), or a UID does not come through as a plain parameter."""
    ran = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        ran.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        query = locate_query(user, _STUDY, _SERIES if series else None, _SOP if sop else None, pool)
        if query is None:
            return None
        sql, params = query.query.sql_with_params()
    expected = {_STUDY} | ({_SERIES} if series else set()) | ({_SOP} if sop else set())
    stand_ins = {p for p in params if isinstance(p, str) and "\x00" in p}
    if ran or stand_ins != expected:
        return None
    return Plan(sql, tuple(params), time.monotonic() + PLAN_SECONDS)


def locate(
    user: Any,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    pool: ReferencePool | None = None,
) -> list[dict[str, Any]]:
    """The stored files a WADO-RS path names (a study, a series or one instance) that the user
    may reach, in series and instance order, with only the columns that sending them needs.

    One query (``locate_query``; the UID lookups use unique indexes). Building it through the
    ORM costs far more than running it, so its SQL is kept for ``PLAN_SECONDS`` per user and
    path shape and run again with the path's UIDs: the rules stay conditions of the SQL,
    evaluated by the database on every request (a quiz revealing a case, a Turing study
    opening, a group change apply at once). Rules that read the database while being built are
    detected and never kept."""
    if not settings.GANTRY_DICOMWEB_CACHES:
        query = locate_query(user, study, series, sop, pool)
        return _in_order(list(query) if query is not None else [])
    key = _plan_key(user, pool, series is not None, sop is not None)
    now = time.monotonic()
    with _plans_lock:
        plan = _plans.get(key)
        if plan is not None and plan.expires > now:
            _plans.move_to_end(key)
        else:
            plan = None
    if plan is None:
        plan = _compile(user, pool, series is not None, sop is not None)
        if plan is not None:
            with _plans_lock:
                _plans[key] = plan
                while len(_plans) > PLAN_LIMIT:
                    _plans.popitem(last=False)
    if plan is not None:
        uids = {_STUDY: study, _SERIES: series, _SOP: sop}
        params = [uids[p] if isinstance(p, str) and p in uids else p for p in plan.params]
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            found = cursor.fetchall()
    else:
        query = locate_query(user, study, series, sop, pool)
        found = list(query) if query is not None else []
    return _in_order(found)


def _in_order(found: list[tuple]) -> list[dict[str, Any]]:
    rows = [dict(zip(LOCATED, values, strict=True)) for values in found]
    rows.sort(
        key=lambda row: (
            row["series_number"] or 0,
            row["series_uid"],
            row["instance_number"] or 0,
            row["sop_uid"],
        )
    )
    return rows


def forget_plans() -> None:
    """Drop every kept plan: for tests that replace the code of a rule (monkeypatch), whose
    plans would otherwise outlive it for up to PLAN_SECONDS."""
    with _plans_lock:
        _plans.clear()
