"""The anatomy GAN's calibration: a linear map on the coarse grids it draws.

The anatomy GANs draw each cell of the coarse grid over the right range but miss how the
cells vary together: their grids vary too little along the directions the training grids
vary most and many times too much along those they hardly vary (docs/engine.md). Fitted
once after training, this map moves every drawn grid as little as it can so that,
at each age and sex, the drawn grids have the training grids' mean and covariance.

Each grid's dependence on the conditions is fitted linearly (for the training grids and for
grids drawn at the same conditions); what is left of a drawn grid beyond its conditional
mean goes through the optimal transport map between the two Gaussians of what is left
(the map of least squared displacement that turns one covariance into the other). So a
patient keeps what its z chose, moved as little as the match allows, its age and sex act
as they do on the training grids, and the set of patients gets the training set's
covariance. The map is part of the model: it is applied to every
grid the generator draws, and the same z, age and sex give the same patient.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from genworker.networks import ConditionalGenerator

DRAWS_PER_GRID = 4  # grids drawn per training grid to fit the drawn side of the map
FIT_SEED = 2027  # the z of the grids drawn for the fit


class GridCalibration(nn.Module):
    """Coarse grids [n, L, r, r] and their condition vectors [n, K] -> calibrated grids."""

    def __init__(self, cells: int, conditions: int) -> None:
        super().__init__()
        self.config = {"cells": cells, "conditions": conditions}
        # Rows: intercept, then each condition. Zero means and the identity map change
        # nothing until fitted.
        self.register_buffer("training_mean", torch.zeros(conditions + 1, cells))
        self.register_buffer("drawn_mean", torch.zeros(conditions + 1, cells))
        self.register_buffer("transport", torch.eye(cells))

    def forward(self, coarse: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        design = torch.cat([torch.ones_like(cond[:, :1]), cond], dim=1)
        drawn = coarse.flatten(1)
        left = drawn - design @ self.drawn_mean
        return (design @ self.training_mean + left @ self.transport).view_as(coarse)


def _conditional_fit(grids: np.ndarray, cond: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares linear fit of each cell on the conditions [K + 1, D], and what is
    left of each grid beyond it [N, D]."""
    design = np.concatenate([np.ones((len(cond), 1)), cond], axis=1)
    mean = np.linalg.lstsq(design, grids, rcond=None)[0]
    return mean, grids - design @ mean


def _sqrt_psd(matrix: np.ndarray, power: float = 0.5) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.clip(values, 1e-12, None) ** power) @ vectors.T


def gaussian_transport(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The symmetric matrix A with A·source·A = target of least displacement (the optimal
    transport map between zero-mean Gaussians of covariances ``source`` and ``target``)."""
    ridge = 1e-6 * np.trace(source) / len(source)
    source = source + ridge * np.eye(len(source))
    root, inverse_root = _sqrt_psd(source), _sqrt_psd(source, -0.5)
    return inverse_root @ _sqrt_psd(root @ target @ root) @ inverse_root


def fit_calibration(
    training: np.ndarray,  # [N, L, r, r] the anatomy GAN's training grids
    training_cond: np.ndarray,  # [N, K] their condition vectors
    drawn: np.ndarray,  # [M, L, r, r] grids the generator drew
    drawn_cond: np.ndarray,  # [M, K] the conditions they were drawn at
) -> GridCalibration:
    if len(training) <= training[0].size or len(drawn) <= drawn[0].size:
        raise ValueError(
            f"a calibration of {training[0].size} cells needs more grids than cells "
            f"(training {len(training)}, drawn {len(drawn)})"
        )
    training_mean, training_left = _conditional_fit(
        training.reshape(len(training), -1).astype(np.float64), training_cond.astype(np.float64)
    )
    drawn_mean, drawn_left = _conditional_fit(
        drawn.reshape(len(drawn), -1).astype(np.float64), drawn_cond.astype(np.float64)
    )
    transport = gaussian_transport(np.cov(drawn_left.T), np.cov(training_left.T))
    calibration = GridCalibration(training[0].size, training_cond.shape[1])
    calibration.training_mean.copy_(torch.from_numpy(training_mean))
    calibration.drawn_mean.copy_(torch.from_numpy(drawn_mean))
    calibration.transport.copy_(torch.from_numpy(transport))
    return calibration.eval()


@torch.no_grad()
def draw_grids(
    generator: ConditionalGenerator, cond: np.ndarray, seed: int, batch: int = 256
) -> np.ndarray:
    """float32 [n, L, r, r]: the grids ``generator`` draws at the conditions [n, K] from
    the z of ``seed``, as the sampler draws them (no noise inputs, no truncation)."""
    z = np.random.default_rng(seed).standard_normal((len(cond), generator.z_dim))
    grids = []
    for start in range(0, len(cond), batch):
        rows = slice(start, start + batch)
        ws = generator.mapping(
            torch.from_numpy(z[rows].astype(np.float32)), torch.from_numpy(cond[rows])
        )
        grids.append(generator.synthesis_network(ws, "const").numpy())
    return np.concatenate(grids)


def calibrate(
    generator: ConditionalGenerator, training: np.ndarray, training_cond: np.ndarray
) -> GridCalibration:
    """The calibration of ``generator`` to its training grids [N, L, r, r] and their
    conditions [N, K], fitted on ``DRAWS_PER_GRID`` drawn grids at each grid's conditions."""
    cond = np.tile(training_cond, (DRAWS_PER_GRID, 1)).astype(np.float32)
    return fit_calibration(training, training_cond, draw_grids(generator, cond, FIT_SEED), cond)
