"""Grids of generated cases: a rejected patient's row is drawn again on another patient."""

from types import SimpleNamespace

import numpy as np
import pytest

from genworker.latent.grids import CANDIDATES_PER_PATIENT, case_grid
from genworker.latent.model import CaseRejected


class PickyModel:
    """Makes a series only for the patients whose seed is in ``passing``; each image holds its
    patient's seed, so the grid's rows say which patients they are."""

    z_dim = 4

    def __init__(self, passing):
        self.passing = set(passing)

    def series(self, z, *, seed, severities, **_):
        if seed not in self.passing:
            raise CaseRejected("no plan passed")
        t = len(severities)
        return SimpleNamespace(
            images=np.full((t, 1, 8, 8), seed, np.float32), masks=np.zeros((t, 8, 8), bool)
        )


def test_rows_rejected_patients_are_replaced_by_later_candidates():
    model = PickyModel(passing={3, 9, 40})
    grid = case_grid(model, "nodule", (0.0, 0.5, 1.0), patients=3, seed=0)
    assert grid.images[:, 0, 0, 0, 0].tolist() == [3, 9, 40]
    assert grid.candidates == 41
    assert grid.channel(0).shape == (3 * 8, 3 * 8, 3)


def test_grid_stops_drawing_patients_at_its_cap():
    cap = CANDIDATES_PER_PATIENT * 2
    model = PickyModel(passing={5, cap + 1})
    grid = case_grid(model, "nodule", (0.5,), patients=2, seed=0)
    assert grid.images[:, 0, 0, 0, 0].tolist() == [5]
    assert grid.candidates == cap


def test_grid_where_no_patient_passes_is_refused_with_the_reason():
    with pytest.raises(CaseRejected, match="none of 16 patients drawn made a nodule series"):
        case_grid(PickyModel(passing=()), "nodule", (0.5,), patients=1, seed=0)
