"""Agreement statistics against published values and an independent formula."""

import numpy as np
import pytest

from edu.agreement import agreement, complete_block, icc_2_1, quadratic_weighted_kappa

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; they report ICC(2,1) = .29.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
)


def test_icc_matches_shrout_and_fleiss():
    assert icc_2_1(SHROUT_FLEISS) == pytest.approx(0.29, abs=0.005)


def test_icc_is_one_for_identical_raters_and_none_without_variance():
    x = np.array([[1, 1], [3, 3], [5, 5]])
    assert icc_2_1(x) == pytest.approx(1.0)
    assert icc_2_1(np.full((3, 2), 4)) is None
    with pytest.raises(ValueError, match="at least 2 cases"):
        icc_2_1(np.array([[1, 2]]))


def test_quadratic_kappa_by_hand():
    # Raters agree on 2 of 4 cases; both disagreements are one step (weight 1/16 each).
    # Observed weighted disagreement: (1/16 + 1/16) / 4 = 1/32.
    # Marginals a: {1: .5, 2: .5}, b: {1: .25, 2: .5, 3: .25}; expected weighted
    # disagreement = sum pa(i) pb(j) ((i-j)/4)^2 = (.5*.25*1 + .5*.25*4 + .5*.5*1 + .5*.25*1)/16
    # = (0.125 + 0.5 + 0.25 + 0.125) / 16 = 1/16, so kappa = 1 - (1/32)/(1/16) = 0.5.
    assert quadratic_weighted_kappa([1, 1, 2, 2], [1, 2, 2, 3]) == pytest.approx(0.5)


def test_quadratic_kappa_equals_its_moment_form():
    # Quadratic kappa = 1 - mean((a-b)^2) / (var a + var b + (mean a - mean b)^2).
    rng = np.random.default_rng(3)
    a = rng.integers(1, 6, size=40)
    b = np.clip(a + rng.integers(-1, 2, size=40), 1, 5)
    moment = 1 - np.mean((a - b) ** 2) / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)
    assert quadratic_weighted_kappa(a.tolist(), b.tolist()) == pytest.approx(moment)


def test_quadratic_kappa_without_chance_disagreement_is_none():
    assert quadratic_weighted_kappa([3, 3], [3, 3]) is None


def test_complete_block_keeps_raters_who_share_cases():
    table = {
        "c1": {"ann": 4, "bob": 5, "cy": 2},
        "c2": {"ann": 3, "bob": 3},
        "c3": {"ann": 2, "bob": 1},
        "c4": {"cy": 5},
    }
    raters, cases = complete_block(table)
    assert sorted(raters) == ["ann", "bob"]
    assert sorted(cases) == ["c1", "c2", "c3"]
    result = agreement(table)
    assert (result.raters, result.cases) == (2, 3)
    assert result.kappa == pytest.approx(quadratic_weighted_kappa([4, 3, 2], [5, 3, 1]))
    assert agreement({"c1": {"ann": 3}}) is None
