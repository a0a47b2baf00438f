"""Parsing a QIDO-RS query string into matchers, paging and the fields to include."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.http import QueryDict
from pydicom.datadict import keyword_for_tag

from cases.dicomweb.catalog import MATCHING, Matcher, QueryError
from cases.dicomweb.results import parse_includefields, to_tag

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
IGNORED = {"fuzzymatching", "charset", "accept", "_"}
MAX_TEXT_VALUE = 200  # a PN's three component groups of 64 characters, and their separators
MAX_UID_LIST = 65 * 200  # two hundred UIDs
MAX_WILDCARDS = 8


@dataclass
class Query:
    matchers: list[Matcher] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    includefields: set[int] | str = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def _whole(params: QueryDict, name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be a whole number") from None
    if not 0 <= value <= maximum:
        raise QueryError(f"{name} must lie in 0..{maximum}")
    return value


def parse_query(params: QueryDict) -> Query:
    query = Query(
        limit=_whole(params, "limit", DEFAULT_LIMIT, MAX_LIMIT),
        offset=_whole(params, "offset", 0, 10**9),
    )
    try:
        query.includefields = parse_includefields(params.getlist("includefield"))
    except ValueError as exc:
        raise QueryError(f"includefield: {exc}") from None
    for key in params:
        if key in IGNORED or key in ("limit", "offset", "includefield"):
            continue
        try:
            keyword = keyword_for_tag(to_tag(key)) or key
        except ValueError:
            raise QueryError(f"unknown search parameter {key!r}") from None
        value = params.get(key, "")
        if keyword not in MATCHING:
            query.warnings.append(f"{keyword} is not supported for matching and was ignored")
        elif value != "":  # an empty value is universal matching
            alias, kind = MATCHING[keyword]
            query.matchers.append(Matcher(alias, kind, checked_value(keyword, kind, value)))
    return query


def checked_value(keyword: str, kind: str, value: str) -> str:
    """A matching value the database can take, runs of ``*`` made one; QueryError (400)
    for control characters (DICOM text has none; NUL is no text to PostgreSQL), a value
    longer than any the attribute holds, or more wildcards than a name needs."""
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise QueryError(f"{keyword}: control characters are not allowed in a matching value")
    limit = MAX_UID_LIST if kind in ("uid", "study_modality") else MAX_TEXT_VALUE
    if len(value) > limit:
        raise QueryError(f"{keyword}: a matching value has at most {limit} characters")
    value = re.sub(r"\*+", "*", value)
    if value.count("*") + value.count("?") > MAX_WILDCARDS:
        raise QueryError(f"{keyword}: at most {MAX_WILDCARDS} wildcards (* or ?) in a value")
    return value
