"""Item analysis for educators: distractor choice and time per answer, checked against an
independent computation (pandas and scipy), and the CSV export through the page."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse
from scipy import stats as scipy_stats

from edu import answering
from edu.item_analysis import distractor_analysis, time_summary
from edu.models import Attempt
from edu.results import ITEM_CSV_HEADER


def _independent(choices, rest, totals, n_options):
    """Shares from a pandas crosstab, groups by sorting totals (27 %, at least one),
    point-biserial from scipy; trainees without an answer dropped."""
    frame = pd.DataFrame({"choice": choices, "rest": rest, "total": totals})
    n = len(frame)
    group = max(1, int(np.ceil(0.27 * n)))
    order = frame["total"].sort_values(kind="stable").index
    frame["group"] = "middle"
    frame.loc[order[:group], "group"] = "lower"
    frame.loc[order[n - group :], "group"] = "upper"
    answered = frame.dropna(subset=["choice"])
    out = []
    for option in range(n_options):
        chose = (answered["choice"] == option).astype(float)
        share = chose.mean()
        by_group = chose.groupby(answered["group"]).mean()
        r = scipy_stats.pointbiserialr(chose, answered["rest"]).statistic
        out.append((int(chose.sum()), share, by_group.get("upper"), by_group.get("lower"), r))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distractor_analysis_matches_pandas_and_scipy(seed):
    rng = np.random.default_rng(seed)
    n, n_options = 37, 4
    ability = rng.normal(size=n)
    # Strong trainees choose the key (option 1) more often; some leave the question blank.
    choices = [
        None
        if rng.random() < 0.1
        else (1 if rng.random() < 0.3 + 0.2 * a else int(rng.integers(4)))
        for a in ability
    ]
    rest = np.round(5 + 2 * ability + rng.normal(size=n), 1)
    totals = rest + np.array([1.0 if c == 1 else 0.0 for c in choices])
    ours = distractor_analysis(choices, rest, totals, [False, True, False, False])
    theirs = _independent([np.nan if c is None else c for c in choices], rest, totals, n_options)
    for option, (chosen, share, upper, lower, r) in zip(ours, theirs, strict=True):
        assert option.chosen == chosen
        assert option.share == pytest.approx(share)
        assert option.upper_share == pytest.approx(upper)
        assert option.lower_share == pytest.approx(lower)
        assert option.discrimination == pytest.approx(r)
    assert [o.correct for o in ours] == [False, True, False, False]
    assert ours[1].discrimination > 0  # the key draws the strong trainees


def test_distractor_analysis_by_hand():
    # Five trainees; totals 4, 3, 2, 1, 0. Groups of ceil(0.27 * 5) = 2: upper = the first
    # two, lower = the last two. Trainee 4 did not answer.
    choices = [0, 0, 1, None, 2]
    totals = [4.0, 3.0, 2.0, 1.0, 0.0]
    rest = [3.0, 2.0, 2.0, 1.0, 0.0]
    key, first, never = distractor_analysis(choices, rest, totals, [True, False, False])[:3]
    assert (key.chosen, key.share, key.upper_share, key.lower_share) == (2, 0.5, 1.0, 0.0)
    assert key.upper_minus_lower == 1.0
    assert (first.chosen, first.share, first.functioning) == (1, 0.25, True)
    assert (never.chosen, never.share, never.lower_share) == (1, 0.25, 1.0)
    unused = distractor_analysis([0, 0, 0], [1, 2, 3], [2, 3, 4], [True, False])[1]
    assert (unused.chosen, unused.share, unused.functioning) == (0, 0.0, False)
    assert unused.discrimination is None  # nobody chose it: no variance to correlate
    nobody = distractor_analysis([None, None], [1, 2], [1, 2], [True, False])[0]
    assert (nobody.share, nobody.upper_share, nobody.discrimination) == (None, None, None)


def test_time_summary_matches_the_statistics_module():
    seconds = [12.5, 3.0, None, 40.0, 7.25, 19.0, -2.0, 8.0]
    kept = [12.5, 3.0, 40.0, 7.25, 19.0, 8.0]
    summary = time_summary(seconds)
    q1, median, q3 = statistics.quantiles(kept, n=4, method="inclusive")
    assert summary.answered == 6
    assert summary.median_s == pytest.approx(statistics.median(kept)) == pytest.approx(median)
    assert summary.mean_s == pytest.approx(statistics.fmean(kept))
    assert (summary.q1_s, summary.q3_s) == (pytest.approx(q1), pytest.approx(q3))
    assert time_summary([None]).median_s is None


def test_the_item_analysis_csv_has_a_row_per_question_and_option(
    login, educator, quiz, trainee, other_trainee, cohort
):
    other_trainee.groups.add(cohort)
    item = quiz.items.get()
    single_best = item.questions.get(kind="single_best")
    severity = item.questions.get(kind="severity")
    for user, option, wait in ((trainee, 0, 30.0), (other_trainee, 2, 90.0)):
        attempt = Attempt.start(quiz=quiz, user=user)
        attempt.mark_shown(item)
        answered = attempt.started_at + timedelta(seconds=wait)
        answering.submit(attempt, single_best, {"option": option}, now=answered)
        answering.submit(attempt, severity, {"value": 0.5}, now=answered)
        attempt.finish()
    response = login(educator).get(reverse("edu:quiz-items-csv", args=[quiz.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == ITEM_CSV_HEADER
    questions = [r for r in rows if not r["option"]]
    assert len(questions) == 5  # one per question of the item
    first = questions[0]
    assert (first["kind"], first["answered"], first["difficulty"]) == ("single_best", "2", "0.5")
    assert float(first["time_median_s"]) == pytest.approx(60.0, abs=1.0)
    options = [r for r in rows if r["question"] == "1" and r["option"]]
    assert [(o["option_text"], o["correct"], o["chosen"]) for o in options] == [
        ("Glioma", "yes", "1"),
        ("Abscess", "no", "0"),
        ("Infarct", "no", "1"),
    ]
    assert options[1]["functioning_distractor"] == "no"
    page = login(educator).get(reverse("edu:quiz-results", args=[quiz.pk])).content.decode()
    assert 'class="distractors"' in page
    assert "not working as a distractor" in page  # the abscess option nobody chose


def test_only_educators_download_the_item_analysis(login, trainee, quiz):
    response = login(trainee).get(reverse("edu:quiz-items-csv", args=[quiz.pk]))
    assert response.status_code == 403
