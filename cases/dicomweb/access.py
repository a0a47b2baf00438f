"""What a user may reach through DICOMweb.

Synthetic instances follow ``instances_visible_to`` (``SyntheticPatient.objects.visible_to``);
reference images need the reference-pool permission. Other apps hide more by registering a
filter (``cases.models.hiding``): a Turing-study app registers one that hides a study's
synthetic side and pool from its raters while it is open, here as on every page.

Everything here builds querysets: the rules end up as conditions (subqueries) of the one query
that searches or resolves, not as extra queries or Python checks per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet

from cases.models import Instance, ReferenceImage, ReferencePool, instances_visible_to
from cases.models.hiding import (
    Hidden,
    access_filters,
    hidden_from,
    hidden_pools_condition,
    register_hidden_filter,
)

__all__ = [
    "Hidden",
    "access_filters",
    "hidden_from",
    "register_hidden_filter",
    "visible_instances",
    "visible_reference_images",
]


def visible_instances(user: Any, hidden: Sequence[Hidden] | None = None) -> QuerySet[Instance]:
    queryset = instances_visible_to(user)
    for found in hidden_from(user) if hidden is None else hidden:
        if found.instances is not None:
            queryset = queryset.exclude(pk__in=found.instances.values("pk"))
    return queryset


def visible_reference_images(
    user: Any, pool: ReferencePool | None = None, hidden: Sequence[Hidden] | None = None
) -> QuerySet[ReferenceImage]:
    if not user.has_perm("cases.view_referencepool"):
        return ReferenceImage.objects.none()
    hidden = hidden_from(user) if hidden is None else hidden
    queryset = ReferenceImage.objects.all() if pool is None else pool.images.all()
    pools = hidden_pools_condition(hidden, prefix="pool__")
    if pools is not None:
        queryset = queryset.exclude(pools)
    for found in hidden:
        if found.reference_images is not None:
            queryset = queryset.exclude(pk__in=found.reference_images.values("pk"))
    return queryset
