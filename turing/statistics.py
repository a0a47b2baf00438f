"""Statistics of a visual Turing test, as pure functions of the readings.

Conventions: *synthetic is the positive class*. A reading is one rater's call on one image
with a confidence from 1 (guessing) to 5 (certain). Call and confidence together make a
10-level score of "how synthetic the rater thinks the image is": a synthetic call with
confidence c scores 5 + c (6..10), a real call scores 6 - c (1..5). ROC curves and AUC
are computed from that score.

Intervals: proportions get Wilson score intervals; AUC gets a DeLong interval (the
variance from the structural components of the Mann-Whitney statistic, DeLong et al. 1988),
normal approximation, clipped to [0, 1]. Those intervals treat every reading as
independent. Readings are not: one rater's calls share that rater's skill, and one image's
calls share how easy it is. So the study as a whole also gets a multi-reader multi-case
analysis with raters and images both random: accuracy from the rater x image table of
correct calls, AUC from Dorfman-Berbaum-Metz jackknife pseudovalues of each rater's AUC.
The variance of the mean of such a table is s_rater/R + s_image/C + s_residual/(RC), its
components from the two-way ANOVA mean squares (a negative component set to 0), with a t
interval on Satterthwaite's degrees of freedom. That interval is the one to quote when
generalising beyond these raters and images.

The realism lab adds: image-quality scores of the uninformed phase, real against synthetic
(mean ± sd, two-sided Mann-Whitney U); forced-choice trials (2AFC, 4AFC) as a proportion
correct with a Wilson interval and an exact one-sided binomial test against chance (1/2,
1/4); time on image as median and interquartile range; and a carry-over check, Pearson's
chi-square of each call against the truth of the image shown just before it.

Undefined figures (a proportion of nothing, an AUC with one class, a kappa with one rater
or no variation) are ``None``, never a made-up number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))
EXPERIENCE_GROUPS = ((5.0, "< 5 years"), (10.0, "5-9 years"), (float("inf"), "≥ 10 years"))
NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Reading:
    rater: str
    image: str
    synthetic: bool  # the truth
    called_synthetic: bool
    confidence: int  # 1..5
    experience_years: float | None = None
    position: int | None = None  # 1-based place in the rater's order
    time_ms: int | None = None  # time the image was on screen before the answer

    @property
    def correct(self) -> bool:
        return self.synthetic == self.called_synthetic

    @property
    def score(self) -> int:
        return confidence_score(self.called_synthetic, self.confidence)


@dataclass(frozen=True)
class Proportion:
    k: int
    n: int
    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Auc:
    auc: float
    se: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Summary:
    """The figures of one set of readings (one rater, one group, or everyone pooled)."""

    n_readings: int
    accuracy: Proportion
    p_value: float | None  # exact two-sided binomial test of accuracy against 0.5
    sensitivity: Proportion  # synthetic images called synthetic
    specificity: Proportion  # real images called real
    auc: Auc | None
    roc: list[tuple[float, float]]  # (false positive rate, true positive rate) from (0,0) to (1,1)


@dataclass(frozen=True)
class CrossedMean:
    """The mean of a raters x images table with its 95% interval, both factors random."""

    estimate: float
    se: float
    df: float | None  # Satterthwaite's; None when the variance is 0
    low: float
    high: float


@dataclass(frozen=True)
class ReaderCase:
    """Multi-reader multi-case figures from the raters who read every image."""

    raters: int
    images: int
    accuracy: CrossedMean
    auc: CrossedMean | None  # mean of the raters' AUCs; None with < 2 images of a class


@dataclass(frozen=True)
class Analysis:
    pooled: Summary
    reader_case: ReaderCase | None  # None unless two raters read every one of >= 2 images
    per_rater: dict[str, Summary]
    by_experience: dict[str, Summary]
    fleiss_kappa: float | None
    kappa_images: int  # images read by every rater (the kappa's items)
    fooling_rates: dict[str, float] = field(default_factory=dict)  # synthetic image -> rate


@dataclass(frozen=True)
class TrialReading:
    """One rater's answer to one forced-choice trial."""

    rater: str
    trial: int
    correct: bool
    time_ms: int | None = None


@dataclass(frozen=True)
class Spread:
    """Mean ± sd of a set of scores (sd with n - 1; None with fewer than two)."""

    n: int
    mean: float | None
    sd: float | None


@dataclass(frozen=True)
class QualityComparison:
    """Image-quality scores (1-5) of real against synthetic images, given by raters who were
    not told synthetic images were present; ``u`` is the Mann-Whitney U of the synthetic
    scores, ``p_value`` two-sided (both None when a side has no scores)."""

    real: Spread
    synthetic: Spread
    u: float | None
    p_value: float | None


@dataclass(frozen=True)
class ForcedChoice:
    """Proportion of forced-choice trials answered correctly against the chance of guessing
    one of ``alternatives`` images; ``p_value`` is the exact one-sided binomial test that
    raters do better than chance."""

    alternatives: int
    chance: float
    correct: Proportion
    p_value: float | None


@dataclass(frozen=True)
class TimeSpread:
    """Median and interquartile range (25th-75th percentile) of times in milliseconds."""

    n: int
    median: float | None
    q1: float | None
    q3: float | None


@dataclass(frozen=True)
class CarryOver:
    """Whether a call depends on the truth of the image shown just before it.

    ``table`` rows: previous image real, previous image synthetic; columns: called real,
    called synthetic. ``p_value`` is Pearson's chi-square test of independence without
    continuity correction (1 degree of freedom); None when a row or column is empty."""

    table: tuple[tuple[int, int], tuple[int, int]]
    synthetic_after_real: Proportion
    synthetic_after_synthetic: Proportion
    chi2: float | None
    p_value: float | None


def confidence_score(called_synthetic: bool, confidence: int) -> int:
    if not 1 <= confidence <= 5:
        raise ValueError("confidence must be 1..5")
    return 5 + confidence if called_synthetic else 6 - confidence


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials (n > 0)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError("need 0 <= k <= n and n > 0")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def proportion(k: int, n: int) -> Proportion:
    if n == 0:
        return Proportion(0, 0, None, None, None)
    low, high = wilson_interval(k, n)
    return Proportion(k, n, k / n, low, high)


def binomial_p_value(k: int, n: int) -> float:
    """Exact two-sided test of k successes in n trials against p = 0.5.

    The null distribution is symmetric, so the two-sided p-value is twice the smaller tail.
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError("need 0 <= k <= n and n > 0")
    tail = stats.binom.cdf(min(k, n - k), n, 0.5)
    return float(min(1.0, 2.0 * tail))


def _placements(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: for each positive, the share of negatives it outscores
    (ties count half), and for each negative, the share of positives that outscore it."""
    psi = (positives[:, None] > negatives[None, :]) + 0.5 * (
        positives[:, None] == negatives[None, :]
    )
    return psi.mean(axis=1), psi.mean(axis=0)


def auc_delong(truth: Sequence[bool], scores: Sequence[float]) -> Auc | None:
    """ROC AUC (Mann-Whitney) with a DeLong 95% interval; None when a class is missing.

    With fewer than two images of a class the variance is undefined: the AUC is given
    without an interval.
    """
    truth_arr = np.asarray(truth, dtype=bool)
    score_arr = np.asarray(scores, dtype=float)
    positives, negatives = score_arr[truth_arr], score_arr[~truth_arr]
    if len(positives) == 0 or len(negatives) == 0:
        return None
    v10, v01 = _placements(positives, negatives)
    auc = float(v10.mean())
    if len(positives) < 2 or len(negatives) < 2:
        return Auc(auc, None, None, None)
    variance = v10.var(ddof=1) / len(positives) + v01.var(ddof=1) / len(negatives)
    se = float(np.sqrt(variance))
    return Auc(auc, se, max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se))


def roc_points(truth: Sequence[bool], scores: Sequence[float]) -> list[tuple[float, float]]:
    """The empirical ROC curve: one point per distinct score threshold, (0,0) to (1,1)."""
    truth_arr = np.asarray(truth, dtype=bool)
    score_arr = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(truth_arr.sum()), int((~truth_arr).sum())
    points = [(0.0, 0.0)]
    for threshold in sorted(set(score_arr.tolist()), reverse=True):
        called = score_arr >= threshold
        fpr = float((called & ~truth_arr).sum() / n_neg) if n_neg else 0.0
        tpr = float((called & truth_arr).sum() / n_pos) if n_pos else 0.0
        points.append((fpr, tpr))
    if points[-1] != (1.0, 1.0):
        points.append((1.0, 1.0))
    return points


def fleiss_kappa(table: np.ndarray) -> float | None:
    """Fleiss' kappa of a [items, categories] table of counts, every item rated by the same
    number of raters (>= 2). None when undefined: no items, one rater, or chance agreement 1
    (every rating in one category)."""
    table = np.asarray(table, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0:
        return None
    raters = table.sum(axis=1)
    if not np.all(raters == raters[0]):
        raise ValueError("every item must have the same number of ratings")
    r = raters[0]
    if r < 2:
        return None
    p_items = ((table * table).sum(axis=1) - r) / (r * (r - 1))
    p_categories = table.sum(axis=0) / table.sum()
    expected = float((p_categories**2).sum())
    if np.isclose(expected, 1.0):
        return None
    return float((p_items.mean() - expected) / (1 - expected))


def summarise(readings: Sequence[Reading]) -> Summary:
    truth = [r.synthetic for r in readings]
    scores = [r.score for r in readings]
    n_correct = sum(r.correct for r in readings)
    synthetic = [r for r in readings if r.synthetic]
    real = [r for r in readings if not r.synthetic]
    return Summary(
        n_readings=len(readings),
        accuracy=proportion(n_correct, len(readings)),
        p_value=binomial_p_value(n_correct, len(readings)) if readings else None,
        sensitivity=proportion(sum(r.called_synthetic for r in synthetic), len(synthetic)),
        specificity=proportion(sum(not r.called_synthetic for r in real), len(real)),
        auc=auc_delong(truth, scores),
        roc=roc_points(truth, scores) if readings else [],
    )


def crossed_mean(table: np.ndarray) -> CrossedMean:
    """Mean of a [raters, images] table (one value per cell, R and C >= 2) and its 95%
    interval, with raters and images as random factors.

    ``Var(mean) = s_r/R + s_c/C + s_e/(RC)`` with the components estimated from the
    two-way ANOVA mean squares: ``s_r = (MS_R - MS_E)/C``, ``s_c = (MS_C - MS_E)/R``,
    ``s_e = MS_E``, a negative one set to 0. With none set to 0 that is
    ``(MS_R + MS_C - MS_E)/(RC)``.
    """
    table = np.asarray(table, dtype=float)
    n_r, n_c = table.shape
    if n_r < 2 or n_c < 2:
        raise ValueError("need at least two raters and two images")
    mean = float(table.mean())
    row_effects = table.mean(axis=1) - mean
    column_effects = table.mean(axis=0) - mean
    residual = table - mean - row_effects[:, None] - column_effects[None, :]
    df_r, df_c, df_e = n_r - 1, n_c - 1, (n_r - 1) * (n_c - 1)
    ms_r = n_c * float((row_effects**2).sum()) / df_r
    ms_c = n_r * float((column_effects**2).sum()) / df_c
    ms_e = float((residual**2).sum()) / df_e
    # R * C * Var(mean) as a combination of the mean squares; which components are kept sets
    # the coefficients (both: MS_R + MS_C - MS_E; raters only: MS_R; neither: MS_E).
    keep_r, keep_c = float(ms_r > ms_e), float(ms_c > ms_e)
    terms = [(keep_r * ms_r, df_r), (keep_c * ms_c, df_c), ((1 - keep_r - keep_c) * ms_e, df_e)]
    total = sum(term for term, _ in terms)
    if total <= 0:
        return CrossedMean(mean, 0.0, None, mean, mean)
    df = total**2 / sum(term**2 / dof for term, dof in terms if term)
    se = float(np.sqrt(total / (n_r * n_c)))
    half = float(stats.t.ppf(0.975, df)) * se
    return CrossedMean(mean, se, float(df), mean - half, mean + half)


def auc_pseudovalues(synthetic: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """[raters, images] jackknife pseudovalues of each rater's AUC (Dorfman, Berbaum & Metz
    1992): ``C * AUC - (C - 1) * AUC without that image``; a rater's row averages to that
    rater's AUC. ``scores`` is [raters, images], ``synthetic`` the truth of each image."""
    synthetic = np.asarray(synthetic, dtype=bool)
    n_pos, n_neg = int(synthetic.sum()), int((~synthetic).sum())
    if n_pos < 2 or n_neg < 2:
        raise ValueError("need at least two images of each class")
    n_images = n_pos + n_neg
    pseudo = np.empty(np.shape(scores))
    for row, rater_scores in enumerate(np.asarray(scores, dtype=float)):
        v10, v01 = _placements(rater_scores[synthetic], rater_scores[~synthetic])
        auc = v10.mean()
        without = np.empty(n_images)
        without[synthetic] = (n_pos * auc - v10) / (n_pos - 1)
        without[~synthetic] = (n_neg * auc - v01) / (n_neg - 1)
        pseudo[row] = n_images * auc - (n_images - 1) * without
    return pseudo


def reader_case(readings: Sequence[Reading]) -> ReaderCase | None:
    """Multi-reader multi-case accuracy and AUC over the raters who read every image.

    A rater who stopped early is left out rather than imputed. None when fewer than two
    raters read every image, or there are fewer than two images.
    """
    images = sorted({r.image for r in readings})
    by_rater: dict[str, dict[str, Reading]] = defaultdict(dict)
    for r in readings:
        by_rater[r.rater][r.image] = r
    complete = [calls for _, calls in sorted(by_rater.items()) if len(calls) == len(images)]
    if len(complete) < 2 or len(images) < 2:
        return None
    grid = [[calls[image] for image in images] for calls in complete]
    correct = np.array([[r.correct for r in row] for row in grid], dtype=float)
    scores = np.array([[r.score for r in row] for row in grid], dtype=float)
    synthetic = np.array([r.synthetic for r in grid[0]])
    both_classes = min(synthetic.sum(), (~synthetic).sum()) >= 2
    return ReaderCase(
        raters=len(complete),
        images=len(images),
        accuracy=crossed_mean(correct),
        auc=crossed_mean(auc_pseudovalues(synthetic, scores)) if both_classes else None,
    )


def experience_group(years: float | None) -> str:
    if years is None:
        return NOT_RECORDED
    return next(label for upper, label in EXPERIENCE_GROUPS if years < upper)


def agreement_table(readings: Iterable[Reading]) -> np.ndarray:
    """[images read by every rater, 2] counts of (real, synthetic) calls, for Fleiss' kappa."""
    readings = list(readings)
    raters = {r.rater for r in readings}
    calls: dict[str, list[bool]] = defaultdict(list)
    for r in readings:
        calls[r.image].append(r.called_synthetic)
    complete = [c for c in calls.values() if len(c) == len(raters)]
    return np.array([[len(c) - sum(c), sum(c)] for c in complete], dtype=float).reshape(-1, 2)


def fooling_rates(readings: Iterable[Reading]) -> dict[str, float]:
    """Per synthetic image: the share of its readers who called it real."""
    calls: dict[str, list[bool]] = defaultdict(list)
    for r in readings:
        if r.synthetic:
            calls[r.image].append(not r.called_synthetic)
    return {image: sum(fooled) / len(fooled) for image, fooled in calls.items()}


def _grouped(readings: Iterable[Reading], key) -> dict[str, list[Reading]]:
    groups: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        groups[key(r)].append(r)
    return dict(sorted(groups.items()))


def analyse(readings: Sequence[Reading]) -> Analysis:
    """Every figure of a study: pooled, per rater, per experience group, kappa, fooling."""
    table = agreement_table(readings)
    return Analysis(
        pooled=summarise(readings),
        reader_case=reader_case(readings),
        per_rater={
            rater: summarise(group)
            for rater, group in _grouped(readings, lambda r: r.rater).items()
        },
        by_experience={
            label: summarise(group)
            for label, group in _grouped(
                readings, lambda r: experience_group(r.experience_years)
            ).items()
        },
        fleiss_kappa=fleiss_kappa(table),
        kappa_images=len(table),
        fooling_rates=fooling_rates(readings),
    )


def spread(values: Sequence[float]) -> Spread:
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return Spread(0, None, None)
    sd = float(values.std(ddof=1)) if len(values) > 1 else None
    return Spread(len(values), float(values.mean()), sd)


def compare_quality(real: Sequence[int], synthetic: Sequence[int]) -> QualityComparison:
    """Quality scores of the two sides: mean ± sd each and a two-sided Mann-Whitney U test
    (scipy's exact test for small samples without ties, else the normal approximation with
    tie correction). Every score counts once, as the pooled accuracy counts every reading."""
    u = p_value = None
    if len(real) and len(synthetic):
        test = stats.mannwhitneyu(synthetic, real, alternative="two-sided")
        u, p_value = float(test.statistic), float(test.pvalue)
    return QualityComparison(spread(real), spread(synthetic), u, p_value)


def forced_choice(k: int, n: int, alternatives: int) -> ForcedChoice:
    """``k`` correct of ``n`` trials with ``alternatives`` images each (2 or 4)."""
    if alternatives < 2:
        raise ValueError("a forced choice needs at least two alternatives")
    chance = 1 / alternatives
    p_value = float(stats.binom.sf(k - 1, n, chance)) if n else None  # P(X >= k)
    return ForcedChoice(alternatives, chance, proportion(k, n), p_value)


def time_spread(times_ms: Sequence[float]) -> TimeSpread:
    if len(times_ms) == 0:
        return TimeSpread(0, None, None, None)
    q1, median, q3 = np.percentile(np.asarray(times_ms, dtype=float), [25, 50, 75])
    return TimeSpread(len(times_ms), float(median), float(q1), float(q3))


def reading_times(readings: Iterable[Reading]) -> dict[str, TimeSpread]:
    """Time on image of real and synthetic images, and of correct and wrong calls."""
    timed = [r for r in readings if r.time_ms is not None]
    groups = {
        "real images": [r.time_ms for r in timed if not r.synthetic],
        "synthetic images": [r.time_ms for r in timed if r.synthetic],
        "correct calls": [r.time_ms for r in timed if r.correct],
        "wrong calls": [r.time_ms for r in timed if not r.correct],
    }
    return {label: time_spread(times) for label, times in groups.items()}


def carry_over(readings: Iterable[Reading]) -> CarryOver:
    """Call against the previous image's truth, over every pair of images a rater read one
    right after the other (consecutive positions of the rater's order)."""
    by_position: dict[tuple[str, int], Reading] = {
        (r.rater, r.position): r for r in readings if r.position is not None
    }
    counts = np.zeros((2, 2), dtype=int)
    for (rater, position), reading in by_position.items():
        previous = by_position.get((rater, position - 1))
        if previous is not None:
            counts[int(previous.synthetic), int(reading.called_synthetic)] += 1
    chi2 = p_value = None
    if counts.sum(axis=0).all() and counts.sum(axis=1).all():
        test = stats.chi2_contingency(counts, correction=False)
        chi2, p_value = float(test.statistic), float(test.pvalue)
    (real_real, real_synthetic), (synthetic_real, synthetic_synthetic) = counts.tolist()
    return CarryOver(
        table=((real_real, real_synthetic), (synthetic_real, synthetic_synthetic)),
        synthetic_after_real=proportion(real_synthetic, real_real + real_synthetic),
        synthetic_after_synthetic=proportion(
            synthetic_synthetic, synthetic_real + synthetic_synthetic
        ),
        chi2=chi2,
        p_value=p_value,
    )


def analyse_forced_choice(
    readings: Sequence[TrialReading], alternatives: int
) -> tuple[ForcedChoice, dict[str, ForcedChoice]]:
    """Proportion correct pooled over every trial answered, and per rater."""
    per_rater = {
        rater: forced_choice(sum(r.correct for r in group), len(group), alternatives)
        for rater, group in _grouped(readings, lambda r: r.rater).items()
    }
    pooled = forced_choice(sum(r.correct for r in readings), len(readings), alternatives)
    return pooled, per_rater


def trial_times(readings: Iterable[TrialReading]) -> dict[str, TimeSpread]:
    """Time per trial: every trial, and correct and wrong ones."""
    timed = [r for r in readings if r.time_ms is not None]
    groups = {
        "all trials": [r.time_ms for r in timed],
        "correct trials": [r.time_ms for r in timed if r.correct],
        "wrong trials": [r.time_ms for r in timed if not r.correct],
    }
    return {label: time_spread(times) for label, times in groups.items()}
