"""Snapshot selection: a validation fold of the training subjects, ranking by the targets."""

from __future__ import annotations

import numpy as np
import pytest

from genworker.evaluation import check_targets
from genworker.selection import shortfall, validation_cohort
from tests.toy_cohort import disc_cohort


def test_the_shortfall_sums_each_missed_targets_relative_distance():
    result = {
        "fd_ratio": 3.0,  # half over 2
        "memorisation": {"share_too_close": 0.0},  # met
        "controllability": {
            "condition": {"spearman": 0.45, "monotone_fraction": 0.95},  # half short; met
            "direction": {"spearman": None, "monotone_fraction": 0.9},  # unmeasured; met
        },
    }
    targets = check_targets(result)
    assert [t["shortfall"] for t in targets] == pytest.approx([0.5, 0, 0.5, 0, 1, 0])
    assert shortfall(targets) == pytest.approx(0.5 + 0.5 + 1.0)
    assert shortfall([t for t in targets if t["met"]]) == 0.0


def test_the_validation_fold_is_whole_training_tracks_of_every_finding():
    cohort = disc_cohort(resolution=16, n_tracks=24, seed=4)
    validation = validation_cohort(cohort)
    train = cohort.train()
    np.testing.assert_array_equal(validation.images, train.images)  # nothing held out is in it
    fold = validation.held_out
    assert 0 < fold.sum() < len(fold)
    for track in np.unique(validation.track):
        assert len(set(fold[validation.track == track])) == 1  # tracks are never split
    for finding in np.unique(train.finding):
        assert set(fold[validation.finding == finding]) == {False, True}
    assert validation_cohort(cohort).held_out.tolist() == fold.tolist()  # the same fold again
