"""turing.statistics against independent computations (scipy, statsmodels, scikit-learn)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import roc_auc_score, roc_curve
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from turing import statistics as st


def random_readings(seed: int, *, raters: int = 4, images: int = 40, skill: float = 0.7):
    """Readings by raters who are right with probability ``skill``; confidence random."""
    rng = np.random.default_rng(seed)
    truth = rng.random(images) < 0.5
    readings = []
    for r in range(raters):
        for i in range(images):
            correct = rng.random() < skill
            readings.append(
                st.Reading(
                    rater=f"r{r}",
                    image=f"img{i}",
                    synthetic=bool(truth[i]),
                    called_synthetic=bool(truth[i] if correct else not truth[i]),
                    confidence=int(rng.integers(1, 6)),
                    experience_years=[None, 2.0, 7.0, 15.0][r % 4],
                )
            )
    return readings


def delong_by_midranks(truth, scores):
    """DeLong's variance the fast way (Sun & Xu 2014): placements from midranks."""
    truth, scores = np.asarray(truth, bool), np.asarray(scores, float)
    pos, neg = scores[truth], scores[~truth]
    m, n = len(pos), len(neg)
    pooled = stats.rankdata(np.concatenate([pos, neg]))
    v10 = (pooled[:m] - stats.rankdata(pos)) / n
    v01 = 1 - (pooled[m:] - stats.rankdata(neg)) / m
    return np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (7, 20), (20, 20), (0, 20), (153, 300)])
def test_wilson_interval_matches_statsmodels(k, n):
    low, high = st.wilson_interval(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert low == pytest.approx(ref_low, abs=1e-9)
    assert high == pytest.approx(ref_high, abs=1e-9)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (7, 20), (10, 20), (20, 20), (171, 300)])
def test_binomial_p_value_matches_scipy_binomtest(k, n):
    expected = stats.binomtest(k, n, 0.5, alternative="two-sided").pvalue
    assert st.binomial_p_value(k, n) == pytest.approx(expected, rel=1e-9)


def test_bad_counts_are_rejected():
    with pytest.raises(ValueError, match="0 <= k <= n"):
        st.binomial_p_value(5, 4)
    with pytest.raises(ValueError, match="confidence"):
        st.confidence_score(True, 0)


def test_confidence_score_orders_calls_from_sure_real_to_sure_synthetic():
    scores = [st.confidence_score(False, c) for c in (5, 4, 3, 2, 1)]
    scores += [st.confidence_score(True, c) for c in (1, 2, 3, 4, 5)]
    assert scores == list(range(1, 11))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_delong_interval_match_independent_computations(seed):
    readings = random_readings(seed)
    truth = [r.synthetic for r in readings]
    scores = [r.score for r in readings]
    result = st.auc_delong(truth, scores)
    assert result.auc == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    assert result.se == pytest.approx(math.sqrt(delong_by_midranks(truth, scores)), rel=1e-9)
    assert result.low == pytest.approx(result.auc - 1.959964 * result.se, abs=1e-5)


def test_roc_points_match_sklearn_roc_curve():
    readings = random_readings(3)
    truth = [r.synthetic for r in readings]
    scores = [r.score for r in readings]
    fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    assert np.allclose(st.roc_points(truth, scores), np.column_stack([fpr, tpr]))


def test_fleiss_kappa_matches_statsmodels():
    readings = random_readings(4, raters=5)
    table = st.agreement_table(readings)
    assert table.shape == (40, 2)
    assert st.fleiss_kappa(table) == pytest.approx(sm_fleiss_kappa(table), abs=1e-12)


def test_fleiss_kappa_of_perfect_agreement_across_classes_is_one():
    table = np.array([[3, 0], [0, 3], [3, 0]])
    assert st.fleiss_kappa(table) == pytest.approx(1.0)
    assert sm_fleiss_kappa(table) == pytest.approx(1.0)


def test_summary_matches_direct_counts():
    readings = random_readings(5, raters=1, images=60)
    summary = st.summarise(readings)
    correct = sum(r.synthetic == r.called_synthetic for r in readings)
    synthetic = [r for r in readings if r.synthetic]
    assert summary.accuracy.k == correct
    assert summary.accuracy.estimate == pytest.approx(correct / 60)
    assert summary.p_value == pytest.approx(stats.binomtest(correct, 60).pvalue)
    assert summary.sensitivity.n == len(synthetic)
    assert summary.sensitivity.k == sum(r.called_synthetic for r in synthetic)
    assert summary.specificity.n == 60 - len(synthetic)


def test_edge_case_one_rater_has_no_kappa_but_every_other_figure():
    analysis = st.analyse(random_readings(6, raters=1))
    assert analysis.fleiss_kappa is None
    assert list(analysis.per_rater) == ["r0"]
    assert analysis.per_rater["r0"] == analysis.pooled
    assert analysis.pooled.auc is not None


def test_edge_case_all_correct():
    readings = [
        st.Reading("a", f"i{i}", synthetic=i % 2 == 0, called_synthetic=i % 2 == 0, confidence=5)
        for i in range(10)
    ]
    summary = st.summarise(readings)
    assert summary.accuracy.estimate == 1.0
    assert summary.accuracy.high == pytest.approx(1.0)
    assert summary.accuracy.low == pytest.approx(proportion_confint(10, 10, method="wilson")[0])
    assert summary.p_value == pytest.approx(stats.binomtest(10, 10).pvalue)
    truth, scores = [r.synthetic for r in readings], [r.score for r in readings]
    assert summary.auc.auc == 1.0 == roc_auc_score(truth, scores)
    assert (summary.auc.low, summary.auc.high) == (1.0, 1.0)
    assert summary.sensitivity.estimate == summary.specificity.estimate == 1.0


def test_edge_case_all_one_class():
    readings = [
        st.Reading(r, f"i{i}", synthetic=True, called_synthetic=(i + len(r)) % 3 == 0, confidence=3)
        for r in ("a", "bb")
        for i in range(9)
    ]
    analysis = st.analyse(readings)
    assert analysis.pooled.auc is None  # no real images: AUC undefined
    assert analysis.pooled.specificity.estimate is None
    assert analysis.pooled.sensitivity.n == 18
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(
            roc_auc_score([r.synthetic for r in readings], [r.score for r in readings])
        )
    assert len(analysis.fooling_rates) == 9


def test_edge_case_everyone_calls_everything_synthetic_has_no_kappa():
    readings = [
        st.Reading(r, f"i{i}", synthetic=i < 3, called_synthetic=True, confidence=2)
        for r in ("a", "b", "c")
        for i in range(6)
    ]
    table = st.agreement_table(readings)
    assert st.fleiss_kappa(table) is None
    with np.errstate(invalid="ignore", divide="ignore"):
        assert math.isnan(sm_fleiss_kappa(table))


def test_fooling_rate_is_the_share_of_readers_calling_a_synthetic_image_real():
    readings = [
        st.Reading("a", "s1", True, False, 4),
        st.Reading("b", "s1", True, True, 4),
        st.Reading("c", "s1", True, False, 2),
        st.Reading("a", "r1", False, False, 4),
    ]
    assert st.fooling_rates(readings) == {"s1": pytest.approx(2 / 3)}


def test_split_by_experience_groups_the_readings():
    analysis = st.analyse(random_readings(7, raters=4))
    assert set(analysis.by_experience) == {"not recorded", "< 5 years", "5-9 years", "≥ 10 years"}
    assert analysis.by_experience["≥ 10 years"] == analysis.per_rater["r3"]
    assert sum(s.n_readings for s in analysis.by_experience.values()) == 160


def test_kappa_uses_only_images_read_by_every_rater():
    readings = random_readings(8, raters=3, images=10)
    partial = [r for r in readings if not (r.rater == "r2" and r.image in {"img0", "img1"})]
    assert st.analyse(partial).kappa_images == 8


def readings_from_table(correct: np.ndarray, synthetic: np.ndarray) -> list[st.Reading]:
    """Readings of a [raters, images] table of right (True) and wrong calls."""
    return [
        st.Reading(
            rater=f"r{r}",
            image=f"img{i:03d}",
            synthetic=bool(synthetic[i]),
            called_synthetic=bool(synthetic[i] == correct[r, i]),
            confidence=3,
        )
        for r in range(correct.shape[0])
        for i in range(correct.shape[1])
    ]


def test_crossed_mean_variance_matches_a_two_way_anova_by_statsmodels():
    rng = np.random.default_rng(3)
    table = rng.normal(size=(5, 30)) + rng.normal(0, 1, (5, 1)) + rng.normal(0, 1, (1, 30))
    frame = pd.DataFrame(
        {
            "y": table.ravel(),
            "rater": np.repeat(np.arange(5), 30),
            "image": np.tile(np.arange(30), 5),
        }
    )
    anova = anova_lm(ols("y ~ C(rater) + C(image)", data=frame).fit())
    ms = dict(zip(("rater", "image", "residual"), anova["mean_sq"], strict=True))
    assert ms["rater"] > ms["residual"]
    assert ms["image"] > ms["residual"]
    total = ms["rater"] + ms["image"] - ms["residual"]
    df = total**2 / (ms["rater"] ** 2 / 4 + ms["image"] ** 2 / 29 + ms["residual"] ** 2 / 116)

    result = st.crossed_mean(table)

    assert result.estimate == pytest.approx(table.mean())
    assert result.se == pytest.approx(math.sqrt(total / 150))
    assert result.df == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * result.se
    assert (result.low, result.high) == pytest.approx((table.mean() - half, table.mean() + half))


def test_auc_pseudovalues_are_the_jackknife_of_each_raters_auc():
    rng = np.random.default_rng(4)
    synthetic = np.arange(12) % 3 == 0
    scores = rng.integers(1, 11, (3, 12)) + 3 * synthetic
    pseudo = st.auc_pseudovalues(synthetic, scores)
    for rater in range(3):
        auc = roc_auc_score(synthetic, scores[rater])
        assert pseudo[rater].mean() == pytest.approx(auc)
        keep = np.arange(12) != 5
        without = roc_auc_score(synthetic[keep], scores[rater][keep])
        assert pseudo[rater, 5] == pytest.approx(12 * auc - 11 * without)


def test_reader_case_interval_widens_when_raters_differ_in_skill():
    rng = np.random.default_rng(5)
    synthetic = np.arange(60) % 2 == 0
    alike = rng.random((6, 60)) < 0.75
    skills = np.array([1.0, 1.0, 1.0, 0.5, 0.5, 0.5])[:, None]
    unlike = rng.random((6, 60)) < skills
    width = {}
    for name, table in (("alike", alike), ("unlike", unlike)):
        analysis = st.analyse(readings_from_table(table, synthetic))
        mrmc = analysis.reader_case.accuracy
        width[name] = mrmc.high - mrmc.low
        assert mrmc.estimate == pytest.approx(analysis.pooled.accuracy.estimate)
    assert width["unlike"] > 2 * width["alike"]


def test_reader_case_interval_widens_when_images_are_easy_or_hard_for_everyone():
    synthetic = np.arange(60) % 2 == 0
    easy = np.arange(60) % 4 != 1  # every rater right on the same 45 images, wrong on 15
    table = np.tile(easy, (6, 1))
    analysis = st.analyse(readings_from_table(table, synthetic))
    pooled, mrmc = analysis.pooled.accuracy, analysis.reader_case.accuracy
    assert mrmc.estimate == pooled.estimate == 0.75
    # Six raters add nothing: the interval is that of 60 images, not of 360 readings.
    assert mrmc.se == pytest.approx(math.sqrt(np.var(easy, ddof=1) / 60))
    assert mrmc.df == pytest.approx(59)
    assert mrmc.high - mrmc.low > 2 * (pooled.high - pooled.low)


def test_reader_case_uses_only_raters_who_read_every_image():
    readings = random_readings(9, raters=3, images=10)
    partial = [r for r in readings if not (r.rater == "r2" and r.image == "img0")]
    assert st.reader_case(partial).raters == 2
    assert st.reader_case(partial).images == 10
    only_one = [r for r in partial if r.rater != "r1"]
    assert st.reader_case(only_one) is None
    assert st.analyse(random_readings(9, raters=1)).reader_case is None


def test_reader_case_auc_needs_two_images_of_each_class():
    readings = [
        st.Reading(r, f"i{i}", synthetic=i == 0, called_synthetic=i % 2 == 0, confidence=3)
        for r in ("a", "b")
        for i in range(6)
    ]
    result = st.reader_case(readings)
    assert result.auc is None
    assert result.accuracy.estimate == pytest.approx(4 / 6)
