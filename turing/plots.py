"""Geometry of a study's result plots, drawn as SVG by templates/turing/_plot.html.

Plain numbers in, shapes in a fixed viewBox out; the template escapes every text (the same
idiom as :mod:`edu.plots`). No JavaScript and no inline styles: the site's CSP allows
neither; SVG presentation attributes are not styles.
"""

from __future__ import annotations

from typing import Any

from turing.statistics import Summary

WIDTH, HEIGHT, MARGIN = 360, 300, 44
COLOURS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7d8c", "#57606a")
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)

Plot = dict[str, Any]


def _x(value: float) -> float:
    return MARGIN + value * (WIDTH - 2 * MARGIN)


def _y(value: float) -> float:
    return HEIGHT - MARGIN - value * (HEIGHT - 2 * MARGIN)


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int = 11) -> dict:
    return {"x": round(x, 1), "y": round(y, 1), "text": text, "anchor": anchor, "size": size}


def _plot(kind: str, title: str, height: int = HEIGHT, **shapes: Any) -> Plot:
    return {
        "kind": kind,
        "title": title,
        "width": WIDTH,
        "height": height,
        "frame": None,
        "lines": [],
        "polylines": [],
        "rects": [],
        "circles": [],
        "texts": [],
        "rotated": None,
        **shapes,
    }


def _axes(x_label: str, y_label: str) -> dict[str, Any]:
    """The unit square's frame, ticks and axis labels."""
    texts = []
    for tick in TICKS:
        texts.append(_text(_x(tick), HEIGHT - MARGIN + 14, f"{tick:g}", size=10))
        texts.append(_text(MARGIN - 6, _y(tick) + 3, f"{tick:g}", anchor="end", size=10))
    texts.append(_text(WIDTH / 2, HEIGHT - 8, x_label))
    side = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    return {
        "frame": {"x": MARGIN, "y": MARGIN, "width": side[0], "height": side[1]},
        "texts": texts,
        "rotated": {"x": 12, "y": round(HEIGHT / 2), "text": y_label},
    }


def roc_plot(per_rater: dict[str, Summary]) -> Plot:
    """One empirical ROC curve per rater, the chance diagonal, AUCs in the legend."""
    plot = _plot(
        "roc",
        "ROC curve per rater",
        **_axes("False positive rate (real called synthetic)", "True positive rate"),
    )
    plot["lines"].append(
        {"x1": _x(0), "y1": _y(0), "x2": _x(1), "y2": _y(1), "stroke": "#8c959f", "dashed": True}
    )
    for i, (rater, summary) in enumerate(per_rater.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{_x(fpr):.1f},{_y(tpr):.1f}" for fpr, tpr in summary.roc)
        plot["polylines"].append({"class": "roc-curve", "points": points, "stroke": colour})
        auc = "AUC n/a" if summary.auc is None else f"AUC {summary.auc.auc:.2f}"
        y = _y(0.3) + 13 * i
        plot["rects"].append(
            {"x": _x(0.55), "y": round(y - 8, 1), "width": 9, "height": 9, "fill": colour}
        )
        plot["texts"].append(_text(_x(0.55) + 13, y, f"{rater}: {auc}", anchor="start", size=10))
    return plot


def accuracy_plot(per_rater: dict[str, Summary], pooled: Summary) -> Plot:
    """Accuracy per rater (and pooled) with Wilson 95% intervals; chance at 0.5."""
    rows = [*per_rater.items(), ("pooled", pooled)]
    row_height, left = 22, 110
    height = 2 * MARGIN + row_height * len(rows)
    span = WIDTH - left - 20

    def x(value: float) -> float:
        return round(left + value * span, 1)

    plot = _plot("accuracy", "Accuracy per rater", height=int(height))
    plot["lines"].append(
        {"x1": x(0.5), "y1": MARGIN - 6, "x2": x(0.5), "y2": height - MARGIN + 4,
         "stroke": "#8c959f", "dashed": True}
    )  # fmt: skip
    plot["texts"] += [_text(x(tick), height - MARGIN + 18, f"{tick:g}", size=10) for tick in TICKS]
    plot["texts"].append(_text(left + span / 2, height - 8, "Accuracy (Wilson 95% interval)"))
    for i, (label, summary) in enumerate(rows):
        y = round(MARGIN + row_height * i + row_height / 2, 1)
        plot["texts"].append(_text(left - 8, y + 4, label, anchor="end"))
        acc = summary.accuracy
        if acc.estimate is None:
            continue
        plot["lines"].append(
            {"class": "interval", "x1": x(acc.low), "y1": y, "x2": x(acc.high), "y2": y,
             "stroke": "#1d2430", "width": 2}
        )  # fmt: skip
        fill = "#d1242f" if label == "pooled" else "#1f6feb"
        plot["circles"].append({"cx": x(acc.estimate), "cy": y, "r": 4, "fill": fill})
    return plot


def fooling_plot(fooling_rates: dict[str, float], bins: int = 10) -> Plot:
    """Histogram of the per-image fooling rate of the synthetic images."""
    counts = [0] * bins
    for rate in fooling_rates.values():
        counts[min(int(rate * bins), bins - 1)] += 1
    top = max(counts, default=0) or 1
    plot = _plot(
        "fooling",
        "Fooling-rate histogram",
        **_axes("Fooling rate (share of raters who called it real)", "Images (tallest bar = 1)"),
    )
    for i, count in enumerate(counts):
        if count:
            h = count / top
            plot["rects"].append(
                {"class": "bar", "x": round(_x(i / bins) + 1, 1), "y": round(_y(h), 1),
                 "width": round((WIDTH - 2 * MARGIN) / bins - 2, 1),
                 "height": round(_y(0) - _y(h), 1), "fill": "#1f6feb",
                 "title": f"{count} image(s)"}
            )  # fmt: skip
    plot["texts"].append(
        _text(WIDTH - MARGIN, MARGIN - 8, f"max {top} image(s)", anchor="end", size=10)
    )
    return plot
