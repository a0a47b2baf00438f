"""The lesion renderer: draws a planned lesion into a patient's latent grid.

Input: the patient's normal latent (standardised, [n, L, 32, 32]) and the lesion model's
maps at 128² (e.g. tumour density, necrosis, enhancement, oedema, texture and the mass
effect's displacement). Output: the latent of the same patient with that lesion. It
learns from pairs the simulation makes exactly (one subject rendered without and with
the finding), so the lesion it draws is the lesion that was planned: the renderer adds
to the normal latent, and what it adds is trained to be zero where the maps are empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genworker.latent.layers import Down, ResBlock, Up, assert_shape
from genworker.latent.runs import ALONE, Progress, Ranks, run_steps


@dataclass(frozen=True)
class RendererConfig:
    latent_channels: int
    map_channels: int
    width: int = 96

    def to_dict(self) -> dict:
        return {
            "latent_channels": self.latent_channels,
            "map_channels": self.map_channels,
            "width": self.width,
        }


class LesionRenderer(nn.Module):
    """A small U-Net on the 32² grid: normal latent + maps -> latent with the lesion."""

    def __init__(self, config: RendererConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.maps_in = nn.Sequential(
            nn.Conv2d(config.map_channels, 24, 3, padding=1),
            Down(24, 32),
            ResBlock(32, 32),
            Down(32, w // 2),
        )
        self.latent_in = nn.Conv2d(config.latent_channels, w // 2, 3, padding=1)
        self.block32 = nn.Sequential(ResBlock(w, w), ResBlock(w, w))
        self.down = Down(w, w)
        self.block16 = nn.Sequential(ResBlock(w, w), ResBlock(w, w))
        self.up = Up(w, w)
        self.out = nn.Sequential(ResBlock(2 * w, w), nn.Conv2d(w, config.latent_channels, 1))

    def forward(
        self,
        normal: torch.Tensor,  # [n, latent_channels, 32, 32]
        maps: torch.Tensor,  # [n, map_channels, 128, 128]
    ) -> torch.Tensor:  # [n, latent_channels, 32, 32]
        n, _, h, w = normal.shape
        assert_shape(maps, [n, self.config.map_channels, 4 * h, 4 * w])
        x = torch.cat([self.latent_in(normal), self.maps_in(maps)], dim=1)
        skip = self.block32(x)
        deep = self.up(self.block16(self.down(skip)))
        return normal + self.out(torch.cat([skip, deep], dim=1))


@dataclass(frozen=True)
class RendererData:
    normal: np.ndarray  # float32 [K, L, 32, 32] per track
    target: np.ndarray  # float32 [N, L, 32, 32] per image
    maps: np.ndarray  # float16 [N, M, 128, 128] per image
    track: np.ndarray  # int [N]: row of ``normal``


def train_renderer(
    data: RendererData,
    config: RendererConfig,
    *,
    out_dir: Path,
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    max_minutes: float | None = None,
    max_steps: int | None = None,
    ranks: Ranks = ALONE,  # under torchrun: batch_size rows per rank
) -> tuple[LesionRenderer, Progress]:
    """L1 between the rendered and the simulated latent, weighted up where the lesion is."""
    torch.manual_seed(seed)
    model = LesionRenderer(config).to(ranks.device)
    net = ranks.wrap(model)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(seed)

    def step(index: int) -> dict[str, float]:
        for group in optimiser.param_groups:
            group["lr"] = float(lr * (0.55 + 0.45 * np.cos(np.pi * index / steps)))
        rows = rng.integers(len(data.target), size=batch_size * ranks.world)
        rows = rows[ranks.share(batch_size)]
        normal = torch.from_numpy(data.normal[data.track[rows]]).to(ranks.device)
        target = torch.from_numpy(data.target[rows]).to(ranks.device)
        maps = torch.from_numpy(data.maps[rows].astype(np.float32)).to(ranks.device)
        out = net(normal, maps)
        near = F.max_pool2d(maps[:, :1], 4) > 0.05  # the lesion's footprint on the grid
        weight = 1.0 + 4.0 * F.max_pool2d(near.float(), 5, stride=1, padding=2)
        loss = (weight * (out - target).abs()).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return {"l1": loss.item()}

    out_dir.mkdir(parents=True, exist_ok=True)
    progress = run_steps(
        step,
        total_steps=steps,
        state_path=out_dir / "renderer-state.pt",
        modules={"model": model, "optimiser": optimiser},
        rng=rng,
        max_minutes=max_minutes,
        max_steps=max_steps,
        label="renderer",
        ranks=ranks,
    )
    return model.cpu().eval(), progress
