"""Server-rendered SVG plots of a study's results (no JavaScript, no inline styles: the
site's CSP allows neither; SVG presentation attributes are not styles)."""

from __future__ import annotations

from html import escape

from django.utils.safestring import SafeString, mark_safe

from turing.statistics import Summary

WIDTH, HEIGHT, MARGIN = 360, 300, 44
COLOURS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7d8c", "#57606a")


def _x(value: float) -> float:
    return MARGIN + value * (WIDTH - 2 * MARGIN)


def _y(value: float) -> float:
    return HEIGHT - MARGIN - value * (HEIGHT - 2 * MARGIN)


def _svg(kind: str, title: str, body: list[str], height: int = HEIGHT) -> SafeString:
    return mark_safe(  # every text in body is escaped where it is made
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-plot="{kind}" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="#1d2430">{escape(text)}</text>'
    )


def _axes(x_label: str, y_label: str) -> list[str]:
    parts = [
        f'<rect x="{MARGIN}" y="{MARGIN}" width="{WIDTH - 2 * MARGIN}" '
        f'height="{HEIGHT - 2 * MARGIN}" fill="#fff" stroke="#d9dee5"/>'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(_text(_x(tick), HEIGHT - MARGIN + 14, f"{tick:g}", size=10))
        parts.append(_text(MARGIN - 6, _y(tick) + 3, f"{tick:g}", anchor="end", size=10))
    parts.append(_text(WIDTH / 2, HEIGHT - 8, x_label))
    parts.append(
        f'<text transform="translate(12 {HEIGHT / 2:.0f}) rotate(-90)" text-anchor="middle" '
        f'font-size="11" fill="#1d2430">{escape(y_label)}</text>'
    )
    return parts


def roc_svg(per_rater: dict[str, Summary]) -> SafeString:
    """One empirical ROC curve per rater, the chance diagonal, AUCs in the legend."""
    body = _axes("False positive rate (real called synthetic)", "True positive rate")
    body.append(
        f'<line x1="{_x(0)}" y1="{_y(0)}" x2="{_x(1)}" y2="{_y(1)}" stroke="#8c959f" '
        'stroke-dasharray="4 3"/>'
    )
    for i, (rater, summary) in enumerate(per_rater.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{_x(fpr):.1f},{_y(tpr):.1f}" for fpr, tpr in summary.roc)
        body.append(
            f'<polyline class="roc-curve" points="{points}" fill="none" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        auc = "AUC n/a" if summary.auc is None else f"AUC {summary.auc.auc:.2f}"
        y = _y(0.3) + 13 * i
        body.append(f'<rect x="{_x(0.55)}" y="{y - 8:.1f}" width="9" height="9" fill="{colour}"/>')
        body.append(_text(_x(0.55) + 13, y, f"{rater}: {auc}", anchor="start", size=10))
    return _svg("roc", "ROC curve per rater", body)


def accuracy_svg(per_rater: dict[str, Summary], pooled: Summary) -> SafeString:
    """Accuracy per rater (and pooled) with Wilson 95% intervals; chance at 0.5."""
    rows = [*per_rater.items(), ("pooled", pooled)]
    row_height = 22
    height = 2 * MARGIN + row_height * len(rows)
    left = 110
    span = WIDTH - left - 20

    def x(value: float) -> float:
        return left + value * span

    body = [
        f'<line x1="{x(0.5):.1f}" y1="{MARGIN - 6}" x2="{x(0.5):.1f}" '
        f'y2="{height - MARGIN + 4}" stroke="#8c959f" stroke-dasharray="4 3"/>'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(_text(x(tick), height - MARGIN + 18, f"{tick:g}", size=10))
    body.append(_text(left + span / 2, height - 8, "Accuracy (Wilson 95% interval)"))
    for i, (label, summary) in enumerate(rows):
        y = MARGIN + row_height * i + row_height / 2
        body.append(_text(left - 8, y + 4, label, anchor="end"))
        acc = summary.accuracy
        if acc.estimate is None:
            continue
        body.append(
            f'<line class="interval" x1="{x(acc.low):.1f}" y1="{y:.1f}" x2="{x(acc.high):.1f}" '
            f'y2="{y:.1f}" stroke="#1d2430" stroke-width="2"/>'
        )
        body.append(
            f'<circle cx="{x(acc.estimate):.1f}" cy="{y:.1f}" r="4" '
            f'fill="{"#d1242f" if label == "pooled" else "#1f6feb"}"/>'
        )
    return _svg("accuracy", "Accuracy per rater", body, height=int(height))


def histogram_svg(fooling_rates: dict[str, float], bins: int = 10) -> SafeString:
    """Histogram of the per-image fooling rate of the synthetic images."""
    counts = [0] * bins
    for rate in fooling_rates.values():
        counts[min(int(rate * bins), bins - 1)] += 1
    top = max(counts, default=0) or 1
    body = _axes("Fooling rate (share of raters who called it real)", "Images (tallest bar = 1)")
    for i, count in enumerate(counts):
        if count:
            h = count / top
            body.append(
                f'<rect class="bar" x="{_x(i / bins) + 1:.1f}" y="{_y(h):.1f}" '
                f'width="{(WIDTH - 2 * MARGIN) / bins - 2:.1f}" height="{_y(0) - _y(h):.1f}" '
                f'fill="#1f6feb"><title>{count} image(s)</title></rect>'
            )
    body.append(_text(WIDTH - MARGIN, MARGIN - 8, f"max {top} image(s)", anchor="end", size=10))
    return _svg("fooling", "Fooling-rate histogram", body)
