"""Geometry of the small server-rendered SVG charts (drawn by templates/edu/_chart.html).

Plain numbers in, shapes in a fixed viewBox out; no plotting library and no script.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WIDTH, HEIGHT, PAD = 480, 200, 30
# Horizontal bars: a row per label, the label written in full on the left.
ROW, LABEL_WIDTH, FONT_SIZE = 28, 190, 14


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


def hbar_chart(labels: Sequence[str], values: Sequence[float], *, top: float) -> dict[str, Any]:
    """One horizontal bar per label from 0 to ``top``: category charts whose labels are words
    (findings, question types) stay readable however many there are."""
    length = WIDTH - LABEL_WIDTH - 2 * PAD
    rows = [
        {
            "label": label,
            "value": value,
            "y": PAD / 2 + i * ROW,
            "text_y": PAD / 2 + i * ROW + ROW / 2 + FONT_SIZE / 3,
            "width": length * max(0.0, min(value, top)) / top,
        }
        for i, (label, value) in enumerate(zip(labels, values, strict=True))
    ]
    return {
        "kind": "hbars",
        "width": WIDTH,
        "height": PAD + max(1, len(rows)) * ROW,
        "label_width": LABEL_WIDTH,
        "bar_x": LABEL_WIDTH,
        "bar_height": ROW * 0.7,
        "font_size": FONT_SIZE,
        "rows": rows,
        "top": top,
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
