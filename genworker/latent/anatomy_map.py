"""The decoded anatomy's quantile map: the decoder's anatomy maps brought back to the
simulation's values before a lesion is planned on them.

The decoder gives a chest's thin lung back too thick (a decoded 10 / 20 / 40 mm sits where
the simulation has 8.1 / 18.4 / 37.4 mm), so an effusion planned on the decoded lung base
fills a footprint too short for the fluid its maps draw, the image check turns the plan
away, and broad patients' small effusions are made on other patients (docs/engine.md).
The map is fitted once on simulated normal subjects: each passes through the model's own
networks as the sampler's patients do (encoded, its coarse grid redrawn by the detail
network, decoded), and each chosen anatomy channel gets the monotone map that gives its
decoded values, pooled over every pixel of every subject, the simulation's distribution
(the quantile of one matched to the same quantile of the other). It is part of the model:
the sampler plans, and reads a lesion's facts, on the mapped anatomy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from genworker.latent.autoencoder import Autoencoder, encode_all
from genworker.latent.detail import DetailNet, redraw_all

QUANTILES = 201  # knots of each channel's map: every half percent
FIT_SUBJECTS = 400  # simulated normal subjects a map is fitted on
FIT_SEED = 4099  # their seed: subjects no model trains or is evaluated on


class AnatomyMap(nn.Module):
    """Anatomy maps [A, R, R] -> the same with ``channels`` mapped through their quantiles."""

    def __init__(self, channels: list[int], quantiles: int = QUANTILES) -> None:
        super().__init__()
        self.config = {"channels": list(channels), "quantiles": quantiles}
        # Until fitted, each knot maps onto itself: the map changes nothing.
        knots = torch.linspace(0, 1, quantiles).repeat(len(channels), 1)
        self.register_buffer("decoded", knots.clone())
        self.register_buffer("simulated", knots.clone())

    def mapped(self, anatomy: np.ndarray) -> np.ndarray:
        maps = np.array(anatomy, dtype=np.float32, copy=True)
        for row, channel in enumerate(self.config["channels"]):
            knots, values = _strict_knots(
                self.decoded[row].double().numpy(), self.simulated[row].double().numpy()
            )
            # Above the top knot (thicker than any fitted pixel) the map shifts by the top
            # knot's offset rather than clamping.
            above = np.maximum(maps[channel] - knots[-1], 0.0)
            maps[channel] = np.interp(maps[channel], knots, values) + above
        return maps


def _strict_knots(decoded: np.ndarray, simulated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots that strictly increase, as interpolation needs: where the decoded quantiles
    tie (every clamped zero of a map is one value), one knot with the simulated values'
    mean over the tie."""
    knots, group = np.unique(decoded, return_inverse=True)
    values = np.bincount(group, weights=simulated) / np.bincount(group)
    return knots, values


def fit_anatomy_map(decoded: np.ndarray, simulated: np.ndarray, channels: list[int]) -> AnatomyMap:
    """The map of decoded anatomy maps [N, A, R, R] onto simulated ones [M, A, R, R]."""
    levels = np.linspace(0, 1, QUANTILES)
    fitted = AnatomyMap(channels)
    for row, channel in enumerate(channels):
        fitted.decoded[row] = torch.from_numpy(np.quantile(decoded[:, channel], levels))
        fitted.simulated[row] = torch.from_numpy(np.quantile(simulated[:, channel], levels))
    return fitted.eval()


@torch.no_grad()
def decoded_anatomy(
    autoencoder: Autoencoder, detail: DetailNet, images: np.ndarray, batch: int = 16
) -> np.ndarray:
    """float32 [N, A, R, R]: the anatomy maps the model decodes for images [N, C, R, R]
    after the detail network has redrawn their latents from the coarse grids."""
    redrawn = redraw_all(detail, encode_all(autoencoder, images))
    return np.concatenate(
        [
            autoencoder.decode(torch.from_numpy(redrawn[i : i + batch]))[1].numpy()
            for i in range(0, len(redrawn), batch)
        ]
    )
