"""Agreement between expert raters on an ordinal score (realism 1-5).

Pure functions over plain numbers: quadratic-weighted Cohen's kappa for two raters and
ICC(2,1) (two-way random effects, absolute agreement, single rater; Shrout & Fleiss 1979)
for two or more raters who all rated the same cases. ``complete_block`` picks such a set
of raters and cases out of an incomplete rating table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def quadratic_weighted_kappa(
    a: Sequence[int], b: Sequence[int], categories: Sequence[int] = (1, 2, 3, 4, 5)
) -> float | None:
    """Cohen's kappa with quadratic disagreement weights ((i - j) / (k - 1))².

    None when chance disagreement is zero (both raters used a single, identical category).
    """
    if len(a) != len(b) or not a:
        raise ValueError("kappa needs two equally long, non-empty rating lists")
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    observed = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        observed[index[x], index[y]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    i, j = np.indices((k, k))
    weights = ((i - j) / (k - 1)) ** 2
    chance = float((weights * expected).sum())
    if chance == 0.0:
        return None
    return 1.0 - float((weights * observed).sum()) / chance


def icc_2_1(ratings: np.ndarray) -> float | None:
    """ICC(2,1) of a complete table: one row per case, one column per rater.

    None when the table has no variance at all (every rating equal).
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError("ICC needs at least 2 cases rated by the same 2 or more raters")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ms_rows = ss_rows / (n - 1)
    ms_cols = ss_cols / (k - 1)
    ms_error = (ss_total - ss_rows - ss_cols) / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_error + k * (ms_cols - ms_error) / n
    if denominator == 0.0:
        return None
    return float((ms_rows - ms_error) / denominator)


def complete_block(
    table: Mapping[object, Mapping[object, int]],
) -> tuple[list[object], list[object]]:
    """Raters and cases such that every chosen rater rated every chosen case.

    ``table`` maps case -> {rater: rating}. Greedy: raters are taken in order of how many
    cases they rated, and a rater joins while at least two cases remain rated by all.
    """
    counts: dict[object, int] = {}
    for by_rater in table.values():
        for rater in by_rater:
            counts[rater] = counts.get(rater, 0) + 1
    raters: list[object] = []
    cases = list(table)
    for rater in sorted(counts, key=lambda r: (-counts[r], str(r))):
        kept = [c for c in cases if rater in table[c]]
        if len(kept) >= 2:
            raters.append(rater)
            cases = kept
    if len(raters) < 2:
        return [], []
    return raters, cases


@dataclass(frozen=True)
class Agreement:
    """Agreement on one group of cases (a template or a generator)."""

    raters: int
    cases: int
    kappa: float | None  # only with exactly two raters
    icc: float | None


def agreement(table: Mapping[object, Mapping[object, int]]) -> Agreement | None:
    """Kappa (two raters) and ICC(2,1) on the largest complete block; None if there is none."""
    raters, cases = complete_block(table)
    if not raters:
        return None
    matrix = np.array([[table[c][r] for r in raters] for c in cases], dtype=float)
    kappa = None
    if len(raters) == 2:
        kappa = quadratic_weighted_kappa(
            [int(v) for v in matrix[:, 0]], [int(v) for v in matrix[:, 1]]
        )
    return Agreement(raters=len(raters), cases=len(cases), kappa=kappa, icc=icc_2_1(matrix))
