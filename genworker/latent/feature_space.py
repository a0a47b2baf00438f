"""The fixed feature space of the latent models' Fréchet distance: trained once, shipped.

A Fréchet distance is only a figure if its feature network stays the same from one
evaluation to the next. The old evaluator trained a fresh network on the cohort each time
and its penultimate features moved the distance threefold with that network's seed.
This network is trained once on simulated, acquired images and shipped beside the models
(``<cohort>.features.pt``); its features are its *predictions* of what the simulation
knows about each image, not hidden activations, so that networks trained from different
seeds should agree on them, and the distance with them:

- the tissue shares (CSF, grey, white matter) on a coarse grid: the anatomy;
- the lesion's share of each grid cell: where the finding is and how large;
- the acquisition noise per contrast and the patient's age: the look of the scan.

:func:`stability` measures how far the distance moves across the network's training seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genworker import metrics
from genworker.cohorts.scans import ScanTrack
from genworker.latent.layers import assert_shape
from genworker.latent.runs import cosine_lr

FORMAT = "gantry-latent-features/1"
INPUT_SIZE = 128  # images are area-downsampled to this before the network
GRID = 8  # the maps are predicted on a GRID x GRID grid of the field of view
NOISE_SCALE = 0.03  # noise sigma is predicted in units of the simulator's largest
AGE_SCALE = 100.0  # age in centuries


@dataclass(frozen=True)
class FeatureSpaceConfig:
    image_channels: int
    anatomy_channels: int
    widths: tuple[int, ...] = (16, 32, 48, 64)  # 128 -> 64 -> 32 -> 16 -> 8

    def to_dict(self) -> dict:
        return {
            "image_channels": self.image_channels,
            "anatomy_channels": self.anatomy_channels,
            "widths": list(self.widths),
        }

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpaceConfig:
        return cls(data["image_channels"], data["anatomy_channels"], tuple(data["widths"]))

    @property
    def maps(self) -> int:
        return self.anatomy_channels + 1  # tissue shares and the lesion share

    @property
    def dim(self) -> int:
        return self.maps * GRID * GRID + self.image_channels + 1


class FeatureSpace(nn.Module):
    def __init__(self, config: FeatureSpaceConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        channels = config.image_channels
        for width in config.widths:
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1),
                nn.GroupNorm(4, width),
                nn.SiLU(),
                nn.Conv2d(width, width, 3, padding=1),
                nn.SiLU(),
            ]
            channels = width
        self.trunk = nn.Sequential(*layers)
        self.maps = nn.Conv2d(channels, config.maps, 1)
        self.scalars = nn.Linear(channels, config.image_channels + 1)

    def forward(
        self,
        images: torch.Tensor,  # [n, image_channels, R, R] acquired, in [0, 1]
    ) -> torch.Tensor:  # [n, dim]: maps (GRID² each, in [0, 1]), noise and age (scaled)
        assert_shape(images, [None, self.config.image_channels, None, None])
        x = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="area") * 2 - 1
        x = self.trunk(x)  # [n, widths[-1], GRID, GRID]
        maps = torch.sigmoid(self.maps(x)).flatten(1)
        return torch.cat([maps, self.scalars(x.mean(dim=(2, 3)))], dim=1)

    @torch.no_grad()
    def embed(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """float32 [n, dim] of images [n, C, R, R]."""
        self.eval()
        return np.concatenate(
            [
                self(torch.from_numpy(np.asarray(images[i : i + batch_size], np.float32))).numpy()
                for i in range(0, len(images), batch_size)
            ]
        )


def _grid(maps: np.ndarray) -> np.ndarray:
    """Area means of maps [..., R, R] on the GRID x GRID grid, flattened [..., GRID²]."""
    r = maps.shape[-1]
    cells = maps.reshape(*maps.shape[:-2], GRID, r // GRID, GRID, r // GRID).mean(axis=(-3, -1))
    return cells.reshape(*maps.shape[:-2], GRID * GRID)


@dataclass
class FeatureData:
    """Simulated images and what the network learns to predict of each."""

    clean: np.ndarray  # float16 [N, C, R, R] noise-free renders
    noise: np.ndarray  # float32 [N, C] the acquisition's noise sigma per contrast
    targets: np.ndarray  # float32 [N, dim] without the noise part (filled per draw)

    @classmethod
    def of(cls, tracks: Sequence[ScanTrack]) -> FeatureData:
        clean, noise, targets = [], [], []
        for track in tracks:
            tissue = _grid(np.clip(track.anatomy, 0, 1)).ravel()
            for image, mask in zip(track.clean, track.masks, strict=True):
                lesion = _grid(mask.astype(np.float32))
                clean.append(image.astype(np.float16))
                noise.append(track.noise)
                targets.append(
                    np.concatenate(
                        [
                            tissue,
                            lesion,
                            track.noise / NOISE_SCALE,
                            [track.age / AGE_SCALE],
                        ]
                    )
                )
        return cls(np.stack(clean), np.stack(noise), np.stack(targets).astype(np.float32))


def train_feature_space(
    data: FeatureData,
    config: FeatureSpaceConfig,
    acquire,  # (clean [C, R, R], noise [C], rng) -> acquired [C, R, R]: the simulator's
    *,
    steps: int,
    seed: int,
    batch_size: int = 16,
    lr: float = 2e-3,
) -> FeatureSpace:
    """Mean squared error on every prediction; each step acquires its images anew (fresh
    noise), so the network learns the scan, not one noise draw."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 17])
    net = FeatureSpace(config)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    for step in range(steps):
        cosine_lr([optimiser], lr, step, steps, floor=0.0)
        rows = rng.integers(len(data.clean), size=batch_size)
        images = np.stack(
            [acquire(data.clean[i].astype(np.float32), data.noise[i], rng) for i in rows]
        )
        loss = F.mse_loss(net(torch.from_numpy(images)), torch.from_numpy(data.targets[rows]))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return net.eval().requires_grad_(False)


def save_feature_space(net: FeatureSpace, path: Path, card: dict) -> None:
    """A plain dict (format, config, weights, card) that loads with weights_only=True."""
    torch.save(
        {
            "format": FORMAT,
            "config": net.config.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "card": card,
        },
        path,
    )


def load_feature_space(path: Path) -> tuple[FeatureSpace, dict]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    net = FeatureSpace(FeatureSpaceConfig.from_dict(payload["config"]))
    net.load_state_dict(payload["state_dict"])
    return net.eval().requires_grad_(False), payload["card"]


def stability(
    nets: Sequence[FeatureSpace],
    held_out: np.ndarray,  # [N, C, R, R] acquired simulated images
    reference: np.ndarray,  # [M, C, R, R] another simulated sample (the "training set")
    shifted: dict[str, np.ndarray],  # name -> [M, C, R, R] the reference, changed
) -> dict[str, dict]:
    """The Fréchet distance to ``held_out`` of the reference and of each shifted set, and
    each shifted distance over the reference's (the ratio the evaluation reports), in the
    space of each of ``nets`` (networks trained from different seeds); with each figure's
    relative spread (max - min) / mean across the networks."""
    rows = []
    for net in nets:
        target = net.embed(held_out)
        base = metrics.frechet_distance(net.embed(reference), target)
        row = {"reference": base}
        for name, images in shifted.items():
            row[name] = metrics.frechet_distance(net.embed(images), target)
            row[f"{name}_ratio"] = row[name] / base
        rows.append(row)
    out = {}
    for key in rows[0]:
        values = np.array([row[key] for row in rows])
        out[key] = {
            "by_seed": [round(float(v), 4) for v in values],
            "mean": float(values.mean()),
            "spread": float((values.max() - values.min()) / values.mean()),
        }
    return out
