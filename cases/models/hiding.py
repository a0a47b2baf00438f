"""What other apps hide from a user everywhere: pages, the REST API, WADO-URI and DICOMweb.

A feature app registers a filter (from its AppConfig.ready()); ``hidden_for(user)`` says what
that user must not reach, as lazy querysets. Hiding wins over every permission: a visual
Turing study hides its synthetic side and its reference pool from its own raters while it
is open, so that no source of a blinded image can be fetched and matched.

Whole cases and whole pools are the unit: a listing then shows or leaves out a case, never
some of its images, so neither its length nor its order tells which image was drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet


@dataclass(frozen=True)
class Hidden:
    """Lazy querysets (or None) of what one filter hides from one user. A hidden instance
    hides its whole case; a hidden reference image only itself; a hidden pool its images."""

    instances: QuerySet | None = None  # of cases.Instance
    reference_images: QuerySet | None = None  # of cases.ReferenceImage
    cases: QuerySet | None = None  # of cases.SyntheticPatient
    pools: QuerySet | None = None  # of cases.ReferencePool


HiddenFilter = Callable[[Any], Hidden]
_filters: list[HiddenFilter] = []


def register_hidden_filter(hidden_for: HiddenFilter) -> None:
    """Hide more: ``hidden_for(user)`` returns what that user must not reach.

    Build lazy querysets from the user alone, the rule in their SQL: WADO-RS keeps the compiled
    SQL of a user's lookup for a few seconds (``cases.dicomweb.catalog.locate``) and the
    database evaluates it afresh on every request. A filter that runs a query while building
    (``list(...)``) is detected and its plans are not kept, which costs speed, not
    correctness."""
    if hidden_for not in _filters:
        _filters.append(hidden_for)


def access_filters() -> list[HiddenFilter]:
    """The registered filters (part of what a kept locate plan depends on)."""
    return list(_filters)


def hidden_from(user: Any) -> list[Hidden]:
    """What every registered filter hides from ``user`` (ask once, use for every source)."""
    return [hidden_for(user) for hidden_for in _filters]


def hidden_cases_condition(hidden: Sequence[Hidden], prefix: str = "") -> Q | None:
    """A condition true for the cases (or rows under ``prefix``, e.g. ``series__study__``)
    that ``hidden`` hides; None when it hides none."""
    condition = Q()
    for found in hidden:
        if found.cases is not None:
            condition |= _case_or_twin(found.cases.values("pk"), prefix)
        if found.instances is not None:
            condition |= _case_or_twin(found.instances.values("series__study__patient"), prefix)
    return condition or None


def _case_or_twin(patients: QuerySet, prefix: str) -> Q:
    """True for ``patients``, their normal twins and the cases they are twins of: a twin
    shows the same patient (the same z), so hiding one side hides the other."""
    patient = f"{prefix}patient__" if prefix else ""
    return (
        Q(**{f"{patient}pk__in": patients})
        | Q(**{f"{patient}twin_of__in": patients})
        | Q(**{f"{patient}normal_twin__in": patients})
    )


def hidden_pools_condition(hidden: Sequence[Hidden], prefix: str = "") -> Q | None:
    """A condition true for the pools (``prefix`` ``pool__`` for rows of a pool) ``hidden``
    hides; None when it hides none."""
    condition = Q()
    for found in hidden:
        if found.pools is not None:
            condition |= Q(**{f"{prefix}pk__in": found.pools.values("pk")})
    return condition or None
