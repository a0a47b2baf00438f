"""Template tags other apps' pages use to show edu figures without their views knowing edu."""

from __future__ import annotations

from typing import Any

from django import template

from edu import results

register = template.Library()


@register.inclusion_tag("edu/_generator_realism.html")
def generator_realism(generator: Any) -> dict[str, Any]:
    """Expert realism of a generator's cases, for its model page."""
    return {"realism": results.generator_realism(generator.pk)}
