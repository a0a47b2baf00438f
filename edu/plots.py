"""Geometry of the small server-rendered SVG charts (drawn by templates/edu/_chart.html).

Plain numbers in, shapes in a fixed viewBox out; no plotting library and no script.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WIDTH, HEIGHT, PAD = 480, 200, 30


def bar_chart(
    labels: Sequence[str], values: Sequence[float | None], *, top: float | None = None
) -> dict[str, Any]:
    """Vertical bars, one per label; ``None`` values draw no bar (but keep their slot)."""
    present = [v for v in values if v is not None]
    top = top or max(present, default=0) or 1
    n = max(1, len(values))
    slot = (WIDTH - 2 * PAD) / n
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = 0 if value is None else (HEIGHT - 2 * PAD) * value / top
        bars.append(
            {
                "x": PAD + i * slot + slot * 0.1,
                "y": HEIGHT - PAD - height,
                "width": slot * 0.8,
                "height": height,
                "label": label,
                "label_x": PAD + (i + 0.5) * slot,
                "value": value,
            }
        )
    return {
        "kind": "bars",
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "bars": bars,
        "top": top,
        "baseline": HEIGHT - PAD,
    }


def line_chart(values: Sequence[float], *, top: float = 100) -> dict[str, Any]:
    """Points joined in order (e.g. attempt scores over time), y from 0 to ``top``."""
    n = len(values)
    step = (WIDTH - 2 * PAD) / max(1, n - 1)
    points = [
        {"x": PAD + i * step, "y": HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top, "value": v}
        for i, v in enumerate(values)
    ]
    return {
        "kind": "line",
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "points": points,
        "path": " ".join(f"{p['x']:.1f},{p['y']:.1f}" for p in points),
        "top": top,
        "baseline": HEIGHT - PAD,
    }
