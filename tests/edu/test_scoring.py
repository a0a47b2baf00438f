"""Per-question scorers, Kendall tau against scipy, item statistics by hand."""

import numpy as np
import pytest
from scipy import stats

from edu.curation import Rule, Vote, decide, explain
from edu.scoring import (
    Lesion,
    ResponseError,
    kendall_tau,
    majority_text,
    median,
    normalise_text,
    one_lesion,
    score_free_text,
    score_localisation,
    score_severity,
    score_single_best,
    score_staging,
)
from edu.statistics import histogram, item_analysis

OPTIONS = [{"text": "Glioma", "correct": True}, {"text": "Abscess"}, {"text": "Infarct"}]


def test_single_best_answer():
    assert score_single_best(OPTIONS, {"option": 0}).score == 1.0
    wrong = score_single_best(OPTIONS, {"option": 2})
    assert (wrong.score, wrong.detail) == (0.0, {"option": 2, "correct": 0})
    for bad in ({"option": 3}, {"option": True}, {"option": "0"}, {}):
        with pytest.raises(ResponseError):
            score_single_best(OPTIONS, bad)


@pytest.mark.parametrize("seed", range(5))
def test_kendall_tau_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.permutation(7), rng.permutation(7)
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)


def test_staging_scores_tau_against_the_true_order():
    # Shown images are the true timepoints [2, 0, 1]; the true order is images 1, 2, 0.
    perfect = score_staging([2, 0, 1], {"order": [1, 2, 0]})
    assert (perfect.score, perfect.detail["tau"]) == (1.0, 1.0)
    reversed_ = score_staging([2, 0, 1], {"order": [0, 2, 1]})
    assert (reversed_.score, reversed_.detail["tau"]) == (0.0, -1.0)
    one_swap = score_staging([2, 0, 1], {"order": [2, 1, 0]})
    assert one_swap.score == pytest.approx(1 / 3)
    for bad in ({"order": [0, 0, 1]}, {"order": [0, 1]}, {"order": "012"}, {}):
        with pytest.raises(ResponseError):
            score_staging([2, 0, 1], bad)


def test_localisation_scores_within_a_tolerance_in_mm_and_records_distances_in_mm():
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:4, 5:7] = True  # rows 2-3, columns 5-6
    lesion = Lesion(mask=mask, spacing_mm=(0.5, 0.5))
    inside = score_localisation([None, lesion], {"image": 1, "x": 5.2, "y": 3.9}, 1.0)
    assert (inside.score, inside.detail["inside"], inside.detail["distance_mm"]) == (1.0, True, 0)
    # 1.5 px (0.75 mm) left of column 5's edge: within 1 mm, outside 0.5 mm.
    near = {"image": 1, "x": 3.5, "y": 2.5}
    assert score_localisation([None, lesion], near, 1.0).detail["distance_mm"] == 0.75
    assert score_localisation([None, lesion], near, 1.0).score == 1.0
    assert score_localisation([None, lesion], near, 0.5).score == 0.0
    far = score_localisation([None, lesion], {"image": 1, "x": 0.5, "y": 7.5}, 1.0)
    assert far.score == 0.0
    assert far.detail["distance_mm"] == pytest.approx(np.hypot(4.5, 3.5) * 0.5, abs=0.01)
    assert far.detail["to_centre_mm"] == pytest.approx(np.hypot(4.5, 5.5) * 0.5, abs=0.01)
    no_lesion = score_localisation([None, lesion], {"image": 0, "x": 5.2, "y": 3.9}, 1.0)
    assert (no_lesion.score, no_lesion.detail["distance_mm"]) == (0.0, None)
    for bad in ({"image": 2, "x": 1, "y": 1}, {"image": 1, "x": "a", "y": 1}, {"image": 1}):
        with pytest.raises(ResponseError):
            score_localisation([None, lesion], bad, 1.0)


def test_localisation_scores_the_one_lesion_not_a_stray_mask_pixel():
    mask = np.zeros((32, 32), dtype=bool)
    mask[10:16, 10:16] = True  # the lesion
    mask[31, 31] = True  # a stray pixel in the corner
    lesion = Lesion(mask=one_lesion(mask), spacing_mm=(1.0, 1.0))
    corner = score_localisation([lesion], {"image": 0, "x": 31.5, "y": 31.5}, 2.0)
    assert corner.score == 0.0
    assert corner.detail["distance_mm"] == pytest.approx(np.hypot(15.5, 15.5), abs=0.01)
    beside = score_localisation([lesion], {"image": 0, "x": 16.5, "y": 12.0}, 2.0)
    assert (beside.score, beside.detail["inside"]) == (1.0, False)


def test_severity_within_tolerance():
    assert score_severity(0.6, 0.1, {"value": 0.69}).score == 1.0
    assert score_severity(0.6, 0.1, {"value": 0.75}).score == 0.0
    assert score_severity(0.6, 0.1, {"value": 0.75}).detail["error"] == pytest.approx(0.15)
    with pytest.raises(ResponseError):
        score_severity(0.6, 0.1, {"value": float("nan")})


def test_free_text_waits_for_a_grade():
    assert score_free_text({"text": "enhancing mass"}).score is None
    with pytest.raises(ResponseError):
        score_free_text({"text": "   "})


def test_reference_standard_majority_and_median():
    assert normalise_text("  Glioma,\tLEFT-frontal. ") == "glioma left frontal"
    assert majority_text(["Glioma.", "glioma", "Abscess"]) == "glioma"
    assert majority_text(["glioma", "abscess"]) is None  # half is no majority
    assert majority_text(["a", "b", "c"]) is None
    assert majority_text([]) is None
    values = [0.3, 0.9, 0.35, 0.4]
    assert median(values) == pytest.approx(float(np.median(values)))
    assert median([]) is None


def test_free_text_and_severity_against_a_reference_standard():
    assert score_free_text({"text": "GLIOMA!"}, key="glioma").score == 1.0
    assert score_free_text({"text": "abscess"}, key="glioma").detail == {"reference": "glioma"}
    assert score_free_text({"text": "abscess"}, key="glioma").score == 0.0
    assert score_free_text({"text": "abscess"}, key=None).score is None
    with pytest.raises(ResponseError):
        score_free_text({"text": " "}, key="glioma")
    waiting = score_severity(None, 0.1, {"value": 0.4})
    assert (waiting.score, waiting.detail) == (None, {"value": 0.4})
    with pytest.raises(ResponseError):
        score_severity(None, 0.1, {"value": "high"})


def test_curation_rule():
    rule = Rule(min_reviews=2, min_mean_realism=3.5, finding_confirmed_by_all=True)
    assert decide(rule, []) == "draft"
    assert decide(rule, [Vote(5, "yes")]) == "in_review"
    assert decide(rule, [Vote(4, "yes"), Vote(3, "yes")]) == "approved"
    assert decide(rule, [Vote(4, "yes"), Vote(2, "yes")]) == "rejected"
    assert decide(rule, [Vote(5, "yes"), Vote(5, "unsure")]) == "rejected"
    lenient = Rule(min_reviews=2, min_mean_realism=3.5, finding_confirmed_by_all=False)
    assert decide(lenient, [Vote(5, "yes"), Vote(5, "unsure")]) == "approved"


def test_item_analysis_by_hand():
    # Four trainees, three items. Item 0 separates strong from weak trainees; item 1 is
    # answered right by everyone (no variance, so no discrimination); item 2 is unanswered
    # by trainee 3 (NaN: left out of difficulty, 0 in the totals).
    scores = np.array([[1, 1, 1], [1, 1, 0], [0, 1, 0], [0, 1, np.nan]])
    item0, item1, item2 = item_analysis(scores)
    assert item0.difficulty == 0.5
    rest0 = np.array([2, 1, 1, 1])  # totals without item 0
    assert item0.discrimination == pytest.approx(np.corrcoef([1, 1, 0, 0], rest0)[0, 1])
    assert item0.upper_lower == pytest.approx(1.0)  # top 2 (totals 3, 2) vs bottom 2 (1, 1)
    assert item1.difficulty == 1.0
    assert item1.discrimination is None
    assert (item2.difficulty, item2.answered) == (pytest.approx(1 / 3), 3)


def test_histogram_puts_the_top_score_in_the_last_bin():
    counts, edges = histogram([0, 5, 50, 99.9, 100], bins=10)
    assert counts == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert edges[0] == 0
    assert edges[-1] == 100


def test_the_curation_rule_says_why_a_case_has_its_status():
    rule = Rule(min_reviews=2, min_mean_realism=3.5, finding_confirmed_by_all=True)
    assert explain(rule, []) == "No expert has reviewed it yet; the rule needs 2 reviews."
    assert explain(rule, [Vote(5, "yes")]) == "1 of the 2 reviews the rule needs."
    assert explain(rule, [Vote(2, "yes"), Vote(3, "no")]) == (
        "Rejected: mean realism 2.5 is below 3.5 and not every expert confirmed the labelled "
        "finding."
    )
    assert explain(rule, [Vote(4, "yes"), Vote(5, "yes")]) == (
        "Approved: 2 reviews, mean realism 4.5."
    )
