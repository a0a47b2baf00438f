"""Item analysis and score summaries for quiz results. Pure functions over plain numbers.

An item's difficulty is its mean score (the proportion answering correctly for 0/1 items).
Discrimination is the corrected point-biserial correlation: the Pearson correlation between
the item's score and each trainee's total on the *other* items, so that an item does not
correlate with itself. The upper-lower index (top 27 % minus bottom 27 %) is given too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def extreme_groups(totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indexes of the lower and upper 27 % of trainees by total score (at least one each
    from two trainees on; none with fewer). Ties keep the trainees' order."""
    n = len(totals)
    group = max(1, math.ceil(0.27 * n)) if n >= 2 else 0
    ranked = np.argsort(np.asarray(totals, dtype=float), kind="stable")
    return ranked[:group], ranked[n - group :]


@dataclass(frozen=True)
class ItemStats:
    difficulty: float | None
    discrimination: float | None  # corrected point-biserial
    upper_lower: float | None
    answered: int


def item_analysis(scores: np.ndarray) -> list[ItemStats]:
    """``scores``: one row per trainee, one column per item, NaN where unanswered or ungraded.

    Unanswered counts as 0 in the totals (it is a wrong answer in an attempt that ended).
    """
    s = np.asarray(scores, dtype=float)
    filled = np.nan_to_num(s, nan=0.0)
    totals = filled.sum(axis=1)
    lower, upper = extreme_groups(totals)
    group = len(upper)
    result = []
    for j in range(s.shape[1]):
        column = s[:, j]
        answered = ~np.isnan(column)
        difficulty = float(column[answered].mean()) if answered.any() else None
        rest = totals - filled[:, j]
        upper_lower = float(filled[upper, j].mean() - filled[lower, j].mean()) if group else None
        result.append(
            ItemStats(
                difficulty=difficulty,
                discrimination=_pearson(filled[:, j], rest),
                upper_lower=upper_lower,
                answered=int(answered.sum()),
            )
        )
    return result


def histogram(values: Sequence[float], *, bins: int = 10, low: float = 0, high: float = 100):
    """Counts of ``values`` in ``bins`` equal bins over [low, high] (the last one closed)."""
    counts = [0] * bins
    width = (high - low) / bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - low) // width)))] += 1
    edges = [low + i * width for i in range(bins + 1)]
    return counts, edges
