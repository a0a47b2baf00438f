"""Scoring of one answer per question type. Pure functions over plain values.

Each scorer validates the trainee's response (``ResponseError`` -> HTTP 400) and returns a
``Scored``: a score in [0, 1] and the details worth keeping (Kendall tau, click distance in mm).
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage


class ResponseError(ValueError):
    """The response does not fit the question (wrong shape, out of range)."""


@dataclass(frozen=True)
class Scored:
    score: float | None  # None: waits for an educator's grade
    detail: dict[str, Any] = field(default_factory=dict)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ResponseError(f"{name} must be a finite number")
    return float(value)


def score_single_best(options: Sequence[dict[str, Any]], response: dict[str, Any]) -> Scored:
    """``response = {"option": index}``; full marks for the one correct option."""
    choice = response.get("option")
    if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < len(options):
        raise ResponseError(f"option must be an index from 0 to {len(options) - 1}")
    correct = next(i for i, option in enumerate(options) if option.get("correct"))
    return Scored(1.0 if choice == correct else 0.0, {"option": choice, "correct": correct})


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-a of two rankings without ties: (concordant - discordant) / pairs."""
    n = len(x)
    if n != len(y) or n < 2:
        raise ValueError("tau needs two rankings of the same length, at least 2")
    balance = 0
    for i in range(n):
        for j in range(i + 1, n):
            balance += int(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]))
    return balance / (n * (n - 1) / 2)


def score_staging(true_timepoints: Sequence[int], response: dict[str, Any]) -> Scored:
    """``response = {"order": [shown image indices, earliest first]}``.

    ``true_timepoints[d]`` is the real timepoint of the image shown at position d. The score
    is Kendall's tau between the trainee's order and the true one, floored at 0, so that a
    random order scores about 0 and a reversed one exactly 0.
    """
    order = response.get("order")
    n = len(true_timepoints)
    if not isinstance(order, list) or sorted(order) != list(range(n)):
        raise ResponseError(f"order must list each image index 0 to {n - 1} once")
    given_rank = [0] * n
    for rank, shown in enumerate(order):
        given_rank[shown] = rank
    tau = kendall_tau(given_rank, list(true_timepoints))
    return Scored(max(0.0, tau), {"tau": tau, "order": order})


@dataclass(frozen=True)
class Lesion:
    """The ground truth of one shown image: the lesion's pixels (bool [rows, cols]) and the
    pixel spacing (row, column) in mm."""

    mask: np.ndarray
    spacing_mm: tuple[float, float] = (1.0, 1.0)


def one_lesion(mask: np.ndarray) -> np.ndarray:
    """The lesion of a stored mask: its largest 8-connected part. A case has one lesion; stray
    pixels elsewhere in the mask are not it and must not score a click."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == 1 + int(np.argmax(sizes))


DEFAULT_TOLERANCE_MM = 5.0  # how far outside a lesion's edge a click counts, unless set


def score_localisation(
    lesions: Sequence[Lesion | None], response: dict[str, Any], tolerance_mm: float
) -> Scored:
    """``response = {"image": shown index, "x": column, "y": row}`` in image pixels (pixel
    (r, c) covers [c, c + 1) x [r, r + 1)).

    Full marks when the click lies on the lesion of the image clicked or within
    ``tolerance_mm`` of its edge. The distance from the click to the lesion's edge (0 inside)
    and to its centre of mass are kept, in mm.
    """
    image = response.get("image")
    if isinstance(image, bool) or not isinstance(image, int) or not 0 <= image < len(lesions):
        raise ResponseError(f"image must be an index from 0 to {len(lesions) - 1}")
    x, y = _number(response.get("x"), "x"), _number(response.get("y"), "y")
    lesion = lesions[image]
    detail: dict[str, Any] = {"image": image, "x": x, "y": y, "tolerance_mm": tolerance_mm}
    if lesion is None or not lesion.mask.any():
        missing = {"hit": False, "inside": False, "distance_mm": None, "to_centre_mm": None}
        return Scored(0.0, {**detail, **missing})
    row_mm, col_mm = lesion.spacing_mm
    mask_rows, mask_cols = np.nonzero(lesion.mask)
    # Distance to each lesion pixel's square (0 inside it), then the nearest.
    dy = np.maximum(np.maximum(mask_rows - y, 0.0), y - (mask_rows + 1))
    dx = np.maximum(np.maximum(mask_cols - x, 0.0), x - (mask_cols + 1))
    distance = float(np.min(np.hypot(dy * row_mm, dx * col_mm)))
    to_centre = math.hypot(
        (mask_rows.mean() + 0.5 - y) * row_mm, (mask_cols.mean() + 0.5 - x) * col_mm
    )
    hit = distance <= tolerance_mm + 1e-9
    detail.update(
        hit=hit,
        inside=distance == 0.0,
        distance_mm=round(distance, 2),
        to_centre_mm=round(to_centre, 2),
    )
    return Scored(1.0 if hit else 0.0, detail)


def score_severity(true_value: float | None, tolerance: float, response: dict[str, Any]) -> Scored:
    """``response = {"value": number}``; full marks within ``tolerance`` of the truth.

    Without a truth (a reference standard no reader has answered yet) the answer waits.
    """
    value = _number(response.get("value"), "value")
    if true_value is None:
        return Scored(None, {"value": value})
    error = abs(value - true_value)
    return Scored(1.0 if error <= tolerance + 1e-9 else 0.0, {"value": value, "error": error})


def normalise_text(text: str) -> str:
    """Lower case, punctuation dropped, runs of white space made one space."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def majority_text(texts: Sequence[str]) -> str | None:
    """The (normalised) answer more than half of ``texts`` give, or None without one."""
    counts = Counter(normalise_text(t) for t in texts)
    if not counts:
        return None
    text, count = counts.most_common(1)[0]
    return text if 2 * count > len(texts) else None


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def score_free_text(
    response: dict[str, Any], key: str | None = None, max_length: int = 5000
) -> Scored:
    """``response = {"text": str}``; graded later by an educator, unless there is a ``key``
    (the reference readers' majority answer, normalised): then full marks for the same
    answer once normalised, none otherwise."""
    text = response.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ResponseError("text must be a non-empty string")
    if len(text) > max_length:
        raise ResponseError(f"text is limited to {max_length} characters")
    if key is None:
        return Scored(None, {})
    return Scored(1.0 if normalise_text(text) == key else 0.0, {"reference": key})


def score_which_abnormal(abnormal: int, n_images: int, response: dict[str, Any]) -> Scored:
    """``response = {"image": shown index}``: which of the ``n_images`` shown (a case and its
    normal twin, in random order) is abnormal; ``abnormal`` is the case's index."""
    image = response.get("image")
    if isinstance(image, bool) or not isinstance(image, int) or not 0 <= image < n_images:
        raise ResponseError(f"image must be an index from 0 to {n_images - 1}")
    return Scored(1.0 if image == abnormal else 0.0, {"image": image, "abnormal": abnormal})


# "What changed since the prior?": the lesion's size on the current study against the prior,
# by the thresholds of RECIST 1.1 (progression: at least 20 % larger; partial response: at
# least 30 % smaller).
CHANGES = ("grew", "shrank", "unchanged")
GROWN = 1.2
SHRUNK = 0.7


def change_between(prior: float, current: float) -> str:
    """How a lesion measuring ``prior`` then ``current`` (a diameter, in any one unit)
    changed: "grew" (also a lesion that appeared), "shrank" (also one that resolved) or
    "unchanged"."""
    if prior < 0 or current < 0:
        raise ValueError("a lesion's size is never negative")
    if prior == 0:
        return "grew" if current > 0 else "unchanged"
    ratio = current / prior
    if ratio >= GROWN:
        return "grew"
    if ratio <= SHRUNK:
        return "shrank"
    return "unchanged"


def score_change(true_change: str, response: dict[str, Any]) -> Scored:
    """``response = {"change": one of CHANGES}``; full marks for the known change."""
    change = response.get("change")
    if change not in CHANGES:
        raise ResponseError(f"change must be one of {', '.join(CHANGES)}")
    return Scored(1.0 if change == true_change else 0.0, {"change": change, "true": true_change})


def score_is_normal(shown_normal: bool, response: dict[str, Any]) -> Scored:
    """``response = {"normal": true or false}``: is the patient shown normal? ``shown_normal``
    is whether the attempt showed the case's normal twin instead of the case."""
    normal = response.get("normal")
    if not isinstance(normal, bool):
        raise ResponseError("normal must be true or false")
    return Scored(1.0 if normal == shown_normal else 0.0, {"normal": normal, "truth": shown_normal})
