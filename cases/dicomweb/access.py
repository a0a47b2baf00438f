"""What a user may reach through DICOMweb.

Synthetic instances follow ``SyntheticPatient.objects.visible_to``; reference images need the
reference-pool permission. Other apps hide more by registering a filter: a Turing-study app
registers one that hides the images of a study from its blinded raters, so that nothing shown
blinded there can be looked up here.

Everything here builds querysets: the rules end up as conditions (subqueries) of the one query
that searches or resolves, not as extra queries or Python checks per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from cases.models import Instance, ReferenceImage, ReferencePool, instances_visible_to


@dataclass(frozen=True)
class Hidden:
    """Querysets (or None) of what one filter hides from one user."""

    instances: QuerySet[Instance] | None = None
    reference_images: QuerySet[ReferenceImage] | None = None


HiddenFilter = Callable[[Any], Hidden]
_filters: list[HiddenFilter] = []


def register_hidden_filter(hidden_for: HiddenFilter) -> None:
    """Hide more from DICOMweb: ``hidden_for(user)`` returns what that user must not reach.
    Call it from an AppConfig.ready().

    Build lazy querysets from the user alone, the rule in their SQL: WADO-RS keeps the compiled
    SQL of a user's lookup for a few seconds (``catalog.locate``) and the database evaluates
    it afresh on every request. A filter that runs a query while building (``list(...)``) is
    detected and its plans are not kept, which costs speed, not correctness."""
    if hidden_for not in _filters:
        _filters.append(hidden_for)


def access_filters() -> list[HiddenFilter]:
    """The registered filters (part of what a kept locate plan depends on)."""
    return list(_filters)


def hidden_from(user: Any) -> list[Hidden]:
    """What every registered filter hides from ``user`` (ask once, use for both sources)."""
    return [hidden_for(user) for hidden_for in _filters]


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
    queryset = ReferenceImage.objects.all() if pool is None else pool.images.all()
    for found in hidden_from(user) if hidden is None else hidden:
        if found.reference_images is not None:
            queryset = queryset.exclude(pk__in=found.reference_images.values("pk"))
    return queryset
