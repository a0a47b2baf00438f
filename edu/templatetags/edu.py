"""Template tags: edu figures for other apps' pages (without their views knowing edu), and
small filters of the edu pages."""

from __future__ import annotations

from typing import Any

from django import template

from edu import results

register = template.Library()


@register.inclusion_tag("edu/_generator_realism.html")
def generator_realism(generator: Any) -> dict[str, Any]:
    """Expert realism of a generator's cases, for its model page."""
    return {"realism": results.generator_realism(generator.pk)}


@register.filter
def countdown(seconds: float | None) -> str:
    """Seconds as "m:ss" (or "h:mm:ss"), the clock of an exam's time left."""
    total = max(0, int(seconds or 0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
