"""The realism lab's statistics and trials on constructed data with known answers."""

from collections import Counter

import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from turing import statistics as st
from turing.trials import forced_choice_trials


def reading(rater, position, *, synthetic, called_synthetic, time_ms=None):
    return st.Reading(
        rater=rater,
        image=f"{rater}-{position}",
        synthetic=synthetic,
        called_synthetic=called_synthetic,
        confidence=3,
        position=position,
        time_ms=time_ms,
    )


def test_quality_of_separated_sides_has_the_exact_mann_whitney_answer():
    result = st.compare_quality(real=[1, 2, 3], synthetic=[4, 5, 6])
    assert (result.real.n, result.real.mean, result.real.sd) == (3, 2.0, 1.0)
    assert (result.synthetic.mean, result.synthetic.sd) == (5.0, 1.0)
    assert result.u == 9.0  # every synthetic score above every real one: 3 x 3
    assert result.p_value == pytest.approx(0.1)  # 2 of the 20 splits are this extreme


def test_quality_with_ties_matches_scipy_and_equal_sides_are_not_different():
    real, synthetic = [3, 4, 4, 5, 3, 4], [2, 3, 3, 4, 2, 3, 3]
    result = st.compare_quality(real, synthetic)
    assert result.p_value == pytest.approx(stats.mannwhitneyu(synthetic, real).pvalue)
    assert st.compare_quality([2, 3, 4], [4, 3, 2]).p_value == pytest.approx(1.0)


def test_quality_without_a_side_has_no_test_and_all_ties_show_no_difference():
    assert st.compare_quality([], [3, 4]).p_value is None
    assert st.compare_quality([3, 3], [3, 3]).p_value == 1.0
    one = st.compare_quality([4], [])
    assert (one.real.mean, one.real.sd, one.synthetic.mean) == (4.0, None, None)


@pytest.mark.parametrize(
    ("k", "n", "alternatives", "p_value"),
    [(10, 10, 2, 1 / 1024), (3, 3, 4, 1 / 64), (0, 5, 4, 1.0), (5, 10, 2, 638 / 1024)],
)
def test_forced_choice_is_the_one_sided_binomial_test_against_chance(k, n, alternatives, p_value):
    result = st.forced_choice(k, n, alternatives)
    assert result.chance == 1 / alternatives
    assert result.p_value == pytest.approx(p_value)
    assert result.p_value == pytest.approx(
        stats.binomtest(k, n, 1 / alternatives, alternative="greater").pvalue
    )
    assert result.correct.estimate == k / n
    wilson = proportion_confint(k, n, method="wilson")
    assert (result.correct.low, result.correct.high) == pytest.approx(wilson)


def test_forced_choice_of_no_trials_is_undefined_and_one_alternative_is_refused():
    result = st.forced_choice(0, 0, 4)
    assert (result.correct.estimate, result.p_value) == (None, None)
    with pytest.raises(ValueError, match="two alternatives"):
        st.forced_choice(1, 1, 1)


def test_forced_choice_readings_pool_and_split_by_rater():
    readings = [
        st.TrialReading("a", 0, True, 1000),
        st.TrialReading("a", 1, True, 3000),
        st.TrialReading("b", 0, False, 5000),
        st.TrialReading("b", 1, True, 2000),
    ]
    pooled, per_rater = st.analyse_forced_choice(readings, 2)
    assert (pooled.correct.k, pooled.correct.n) == (3, 4)
    assert {rater: row.correct.k for rater, row in per_rater.items()} == {"a": 2, "b": 1}
    times = st.trial_times(readings)
    assert times["all trials"] == st.TimeSpread(4, 2500.0, 1750.0, 3500.0)
    assert times["correct trials"] == st.TimeSpread(3, 2000.0, 1500.0, 2500.0)
    assert times["wrong trials"] == st.TimeSpread(1, 5000.0, 5000.0, 5000.0)


def test_reading_times_split_real_synthetic_correct_and_wrong():
    readings = [
        reading("a", 1, synthetic=True, called_synthetic=True, time_ms=1000),
        reading("a", 2, synthetic=True, called_synthetic=False, time_ms=4000),
        reading("a", 3, synthetic=False, called_synthetic=False, time_ms=2000),
        reading("a", 4, synthetic=False, called_synthetic=True, time_ms=8000),
    ]
    times = st.reading_times(readings)
    assert times["synthetic images"] == st.TimeSpread(2, 2500.0, 1750.0, 3250.0)
    assert times["real images"] == st.TimeSpread(2, 5000.0, 3500.0, 6500.0)
    assert times["correct calls"].median == 1500.0
    assert times["wrong calls"].median == 6000.0
    assert st.time_spread([]) == st.TimeSpread(0, None, None, None)


def test_carry_over_of_raters_who_echo_the_previous_image_is_total():
    """Raters who call each image what the previous one was: the table is diagonal and
    chi-square equals the number of pairs (phi = 1)."""
    truths = [False, True, True, False, False, True, False, True, True, False]
    readings = []
    for rater in ("a", "b"):
        for position, truth in enumerate(truths, start=1):
            previous = truths[position - 2] if position > 1 else False
            readings.append(reading(rater, position, synthetic=truth, called_synthetic=previous))
    result = st.carry_over(readings)
    assert result.table == ((8, 0), (0, 10))  # 9 pairs per rater
    assert result.chi2 == pytest.approx(18.0)
    assert result.p_value == pytest.approx(stats.chi2.sf(18.0, 1))
    assert result.synthetic_after_real.estimate == 0.0
    assert result.synthetic_after_synthetic.estimate == 1.0


def test_carry_over_absent_gives_chi_square_zero_and_skips_unanswered_positions():
    # After a real image: 2 real and 2 synthetic calls; after a synthetic one: the same.
    sequence = [
        (False, False),
        (False, True),
        (True, False),
        (True, True),
        (False, False),
        (True, True),
        (False, True),
        (True, False),
        (False, False),
    ]
    readings = [
        reading("a", position, synthetic=truth, called_synthetic=call)
        for position, (truth, call) in enumerate(sequence, start=1)
    ]
    result = st.carry_over(readings)
    assert result.table == ((2, 2), (2, 2))
    assert result.chi2 == pytest.approx(0.0)
    assert result.p_value == pytest.approx(1.0)
    gap = st.carry_over([r for r in readings if r.position != 5])  # pairs 4-5 and 5-6 gone
    assert sum(map(sum, gap.table)) == 6


def test_carry_over_with_an_empty_row_is_undefined():
    readings = [reading("a", p, synthetic=False, called_synthetic=p % 2 == 0) for p in (1, 2, 3)]
    result = st.carry_over(readings)
    assert result.table == ((1, 1), (0, 0))
    assert (result.chi2, result.p_value) == (None, None)


@pytest.mark.parametrize(
    ("alternatives", "n_real", "n_synthetic"), [(2, 6, 6), (2, 4, 7), (4, 5, 4)]
)
def test_trials_use_every_synthetic_image_once_beside_distinct_real_images(
    alternatives, n_real, n_synthetic
):
    real, synthetic = list(range(100, 100 + n_real)), list(range(n_synthetic))
    trials = forced_choice_trials(real, synthetic, alternatives=alternatives, seed=11)
    assert forced_choice_trials(real, synthetic, alternatives=alternatives, seed=11) == trials
    assert forced_choice_trials(real, synthetic, alternatives=alternatives, seed=12) != trials
    assert sorted(i for trial in trials for i in trial if i < 100) == synthetic
    assert all(len(set(trial)) == alternatives == len(trial) for trial in trials)
    assert all(sum(i < 100 for i in trial) == 1 for trial in trials)
    uses = Counter(i for trial in trials for i in trial if i >= 100)
    assert max(uses.values()) - min(uses.values()) <= 1  # dealt in turn
    assert len(uses) == min(n_real, n_synthetic * (alternatives - 1))
    positions = Counter(next(p for p, i in enumerate(t) if i < 100) for t in trials)
    assert len(positions) > 1  # the synthetic image is not always in the same place


def test_trials_need_enough_real_images():
    with pytest.raises(ValueError, match="at least 3 real images"):
        forced_choice_trials([1, 2], [3], alternatives=4, seed=1)
