"""Item analysis beyond difficulty and discrimination: how each option of a single-best-answer
question was chosen (distractor analysis) and how long trainees took to answer. Pure
functions over plain numbers; ``edu.results`` gathers the numbers from the database.

For each option: how many chose it, the share of those who answered, the share in the upper
and lower 27 % of trainees by total score (``edu.statistics.extreme_groups``), and the
point-biserial correlation between choosing it and the trainee's total on the *other*
questions. A working distractor draws some answers (5 % or more, by the usual rule of thumb)
and draws more weak trainees than strong ones (a negative correlation); the correct option
should correlate positively.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edu.statistics import extreme_groups

# An option chosen by fewer than this share of trainees does no work as a distractor.
FUNCTIONING_SHARE = 0.05


@dataclass(frozen=True)
class OptionStats:
    option: int  # 0-based index of the option as the educator wrote it
    correct: bool
    chosen: int
    share: float | None  # of the trainees who answered the question
    upper_share: float | None  # of the upper group who answered it
    lower_share: float | None
    discrimination: float | None  # point-biserial: chose it (0/1) vs total on other questions

    @property
    def upper_minus_lower(self) -> float | None:
        if self.upper_share is None or self.lower_share is None:
            return None
        return self.upper_share - self.lower_share

    @property
    def functioning(self) -> bool | None:
        """A distractor that draws at least FUNCTIONING_SHARE of the answers; None for the key
        and when nobody answered."""
        if self.correct or self.share is None:
            return None
        return self.share >= FUNCTIONING_SHARE


def _share(chosen: np.ndarray, answered: np.ndarray, rows: np.ndarray) -> float | None:
    n = int(answered[rows].sum())
    return float(chosen[rows].sum() / n) if n else None


def _point_biserial(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def distractor_analysis(
    choices: Sequence[int | None],
    rest_totals: Sequence[float],
    totals: Sequence[float],
    correct: Sequence[bool],
) -> list[OptionStats]:
    """One OptionStats per option.

    ``choices``: the option index each trainee chose, None where they gave no answer.
    ``rest_totals``: each trainee's total on the other questions (for the correlation).
    ``totals``: each trainee's total on every question (for the upper and lower groups, the
    same groups as the question's own upper-lower index). ``correct``: per option, whether it
    is the key. Trainees who did not answer are left out of the shares and correlations.
    """
    picked = np.array([-1 if c is None else int(c) for c in choices], dtype=int)
    answered = picked >= 0
    rest = np.asarray(rest_totals, dtype=float)
    lower, upper = extreme_groups(np.asarray(totals, dtype=float))
    result = []
    for option, is_key in enumerate(correct):
        chosen = picked == option
        result.append(
            OptionStats(
                option=option,
                correct=bool(is_key),
                chosen=int(chosen.sum()),
                share=_share(chosen, answered, np.arange(len(picked))),
                upper_share=_share(chosen, answered, upper),
                lower_share=_share(chosen, answered, lower),
                discrimination=_point_biserial(chosen[answered].astype(float), rest[answered]),
            )
        )
    return result


@dataclass(frozen=True)
class TimeStats:
    answered: int  # answers with a known time
    median_s: float | None
    mean_s: float | None
    q1_s: float | None  # 25th percentile (linear interpolation, numpy's default)
    q3_s: float | None  # 75th percentile


def time_summary(seconds: Sequence[float | None]) -> TimeStats:
    """Time on the question's item before answering: from the item being first shown to the
    answer. Unknown times (None) and negative ones (a clock step) are left out."""
    values = np.array([s for s in seconds if s is not None and s >= 0], dtype=float)
    if not len(values):
        return TimeStats(0, None, None, None, None)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return TimeStats(len(values), float(median), float(values.mean()), float(q1), float(q3))
