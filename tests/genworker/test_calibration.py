"""The anatomy GAN's calibration: drawn grids given the training grids' conditional mean and
covariance, each grid moved as little as that allows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genworker.latent.calibration import GridCalibration, fit_calibration, gaussian_transport

SHAPE = (2, 2, 2)  # channels, rows, columns of a small coarse grid: 8 cells
CELLS = 8


def _grids(rng, n, effect, scale, mixing):
    """Grids whose mean moves with the two conditions by ``effect`` [3, cells] and whose
    cells vary together as ``mixing`` [cells, cells] scaled by ``scale`` says."""
    cond = np.stack([rng.uniform(-1, 1, n), rng.integers(0, 2, n)], axis=1).astype(np.float32)
    design = np.concatenate([np.ones((n, 1)), cond], axis=1)
    left = (rng.standard_normal((n, CELLS)) * scale) @ mixing
    return (design @ effect + left).reshape(n, *SHAPE).astype(np.float32), cond


def _apply(calibration, grids, cond):
    with torch.no_grad():
        return calibration(torch.from_numpy(grids), torch.from_numpy(cond)).numpy()


def _conditional_fit(grids, cond):
    design = np.concatenate([np.ones((len(cond), 1)), cond], axis=1)
    flat = grids.reshape(len(grids), -1)
    mean = np.linalg.lstsq(design, flat, rcond=None)[0]
    return mean, np.cov((flat - design @ mean).T)


def test_calibrated_grids_take_the_training_grids_conditional_mean_and_covariance():
    rng = np.random.default_rng(0)
    effect, mixing = rng.normal(size=(3, CELLS)), np.linalg.qr(rng.normal(size=(CELLS, CELLS)))[0]
    scale = np.linspace(0.2, 2.0, CELLS)
    training, training_cond = _grids(rng, 4000, effect, scale, mixing)
    # What a GAN that learnt each cell's range but not how they vary together might draw:
    # another condition effect, the spread on other directions.
    drawn, drawn_cond = _grids(rng, 8000, effect * 0.5, scale[::-1], np.eye(CELLS))
    calibration = fit_calibration(training, training_cond, drawn, drawn_cond)

    fresh, fresh_cond = _grids(rng, 8000, effect * 0.5, scale[::-1], np.eye(CELLS))
    calibrated = _apply(calibration, fresh, fresh_cond)
    wanted_mean, wanted_cov = _conditional_fit(training, training_cond)
    mean, cov = _conditional_fit(calibrated, fresh_cond)
    np.testing.assert_allclose(mean, wanted_mean, atol=0.1)
    np.testing.assert_allclose(cov, wanted_cov, atol=0.15 * np.abs(wanted_cov).max())
    _, drawn_cov = _conditional_fit(fresh, fresh_cond)
    assert np.abs(drawn_cov - wanted_cov).max() > 0.5 * np.abs(wanted_cov).max()


def test_the_transport_turns_one_covariance_into_the_other_by_the_least_displacement():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, CELLS, CELLS))
    source, target = a @ a.T + np.eye(CELLS), b @ b.T + np.eye(CELLS)
    transport = gaussian_transport(source, target)
    np.testing.assert_allclose(transport, transport.T, atol=1e-8)
    np.testing.assert_allclose(transport @ source @ transport, target, rtol=1e-4)  # the ridge
    # Along shared axes the least displacement scales each axis by the ratio of spreads
    # (a rotation would also match the covariance, and move every grid further).
    diagonal = gaussian_transport(np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 9.0]))
    np.testing.assert_allclose(diagonal, np.diag([2.0, 0.5, 1.0]), atol=1e-5)


def test_a_grid_keeps_its_place_in_the_set():
    """The map is monotone: of two grids the one drawn further along a direction stays
    further along it, so a patient's z keeps choosing its anatomy."""
    rng = np.random.default_rng(2)
    training, training_cond = _grids(rng, 2000, np.zeros((3, CELLS)), np.ones(CELLS), np.eye(CELLS))
    drawn, drawn_cond = _grids(rng, 2000, np.zeros((3, CELLS)), np.full(CELLS, 3.0), np.eye(CELLS))
    calibration = fit_calibration(training, training_cond, drawn, drawn_cond)
    before = drawn.reshape(len(drawn), -1)
    after = _apply(calibration, drawn, drawn_cond).reshape(len(drawn), -1)
    correlation = [np.corrcoef(before[:, c], after[:, c])[0, 1] for c in range(CELLS)]
    assert min(correlation) > 0.99
    assert after.std() == pytest.approx(before.std() / 3, rel=0.1)


def test_an_unfitted_calibration_changes_no_grid():
    grids, cond = torch.randn(5, *SHAPE), torch.rand(5, 2)
    torch.testing.assert_close(GridCalibration(CELLS, 2)(grids, cond), grids)


def test_a_calibration_needs_more_grids_than_cells():
    rng = np.random.default_rng(3)
    few, cond = _grids(rng, CELLS, np.zeros((3, CELLS)), np.ones(CELLS), np.eye(CELLS))
    many, many_cond = _grids(rng, 100, np.zeros((3, CELLS)), np.ones(CELLS), np.eye(CELLS))
    with pytest.raises(ValueError, match="8 cells needs more grids than cells"):
        fit_calibration(few, cond, many, many_cond)
