"""What a user may reach through DICOMweb.

Synthetic instances follow ``SyntheticPatient.objects.visible_to``; reference images need the
reference-pool permission. Other apps hide more by registering a filter: a Turing-study app
registers one that hides the images of a study from its blinded raters, so that nothing shown
blinded there can be looked up here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from cases.models import Instance, ReferenceImage, ReferencePool, instances_visible_to
from cases.roles import can_see_reference


@dataclass(frozen=True)
class Hidden:
    """Querysets (or None) of what one filter hides from one user."""

    instances: QuerySet[Instance] | None = None
    reference_images: QuerySet[ReferenceImage] | None = None


HiddenFilter = Callable[[Any], Hidden]
_filters: list[HiddenFilter] = []


def register_hidden_filter(hidden_for: HiddenFilter) -> None:
    """Hide more from DICOMweb: ``hidden_for(user)`` returns what that user must not reach.
    Call it from an AppConfig.ready()."""
    if hidden_for not in _filters:
        _filters.append(hidden_for)


def visible_instances(user: Any) -> QuerySet[Instance]:
    queryset = instances_visible_to(user)
    for hidden_for in _filters:
        hidden = hidden_for(user).instances
        if hidden is not None:
            queryset = queryset.exclude(pk__in=hidden.values("pk"))
    return queryset


def visible_reference_images(
    user: Any, pool: ReferencePool | None = None
) -> QuerySet[ReferenceImage]:
    if not can_see_reference(user):
        return ReferenceImage.objects.none()
    queryset = ReferenceImage.objects.all() if pool is None else pool.images.all()
    for hidden_for in _filters:
        hidden = hidden_for(user).reference_images
        if hidden is not None:
            queryset = queryset.exclude(pk__in=hidden.values("pk"))
    return queryset
