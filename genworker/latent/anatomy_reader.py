"""The anatomy reader: the anatomy maps a lesion is planned on, read from the decoded image.

The decoder draws each patient's anatomy maps beside the image, but where a field ends they
do not follow the image it draws: on the chest, the decoded lungs left out 7% of the right
lung base and added 14% to the left one (beside the dome), so an effusion planned on them
filled a footprint the film does not show as lung, the image check turned many such plans
away and the fluid that passed was drawn where the simulation would not put it
(docs/engine.md). The reader is a U-Net trained on the simulation's normal images and their
exact anatomy maps; the sampler gives it the decoded image of each patient and plans on what
it reads, so a lesion is planned where the image shows the organ. It is part of the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from genworker.latent.layers import UNet, assert_shape
from genworker.latent.runs import ALONE, Progress, cosine_lr, run_steps

FIT_SUBJECTS = 800  # simulated normal subjects the reader learns from
FIT_SEED = 4099  # their seed: subjects no model trains or is evaluated on
EDGE_PX = 3  # the band either side of a field's edge that the loss weighs again


@dataclass(frozen=True)
class AnatomyReaderConfig:
    image_channels: int
    channels: tuple[int, ...]  # the anatomy maps it reads, by index
    widths: tuple[int, ...] = (16, 32, 64, 96)

    def to_dict(self) -> dict:
        return {
            "image_channels": self.image_channels,
            "channels": list(self.channels),
            "widths": list(self.widths),
        }

    @classmethod
    def from_dict(cls, data: dict) -> AnatomyReaderConfig:
        return cls(data["image_channels"], tuple(data["channels"]), tuple(data["widths"]))


class AnatomyReader(UNet):
    def __init__(self, config: AnatomyReaderConfig) -> None:
        super().__init__(config.image_channels, len(config.channels), config.widths)
        self.config = config

    def forward(
        self,
        images: torch.Tensor,  # [n, image_channels, R, R] in [0, 1], R divisible by 16
    ) -> torch.Tensor:  # [n, len(channels), R, R] in the maps' units
        assert_shape(images, [None, self.config.image_channels, None, None])
        return super().forward(images)

    @torch.no_grad()
    def read(self, image: torch.Tensor, anatomy: np.ndarray) -> np.ndarray:
        """float32 [A, R, R]: ``anatomy`` with the reader's channels read from ``image``
        [1, C, R, R] (no map is negative); the others as they are."""
        read = self(image).clamp(min=0)[0].cpu().numpy()
        maps = np.array(anatomy, dtype=np.float32, copy=True)
        maps[list(self.config.channels)] = read
        return maps


def field_edges(maps: np.ndarray, level: float) -> np.ndarray:
    """bool [..., R, R]: pixels within ``EDGE_PX`` of where maps [..., R, R] cross ``level``."""
    inside = maps > level
    flat = inside.reshape(-1, *inside.shape[-2:])
    edges = [
        ndimage.binary_dilation(field, iterations=EDGE_PX)
        & ~ndimage.binary_erosion(field, iterations=EDGE_PX)
        for field in flat
    ]
    return np.stack(edges).reshape(inside.shape)


def train_anatomy_reader(
    images: np.ndarray,  # float [N, C, R, R] in [0, 1], normal subjects
    anatomy: np.ndarray,  # float [N, A, R, R] their exact maps
    config: AnatomyReaderConfig,
    *,
    edge_level: float,
    state_path: Path,
    steps: int,
    batch_size: int = 8,
    lr: float = 2e-3,
    seed: int = 0,
    max_minutes: float | None = None,
) -> tuple[AnatomyReader, Progress]:
    """L1 on every pixel of the chosen maps plus L1 on the band around each field's edge
    (where the map crosses ``edge_level``) as a mean of its own: the edge is a few percent
    of the pixels and is what a plan reads (where a lung base ends), so a whole-map L1
    alone leaves it where the decoder left it (docs/engine.md)."""
    torch.manual_seed(seed)
    model = AnatomyReader(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(np.asarray(images, np.float32))
    target = np.asarray(anatomy[:, list(config.channels)], np.float32)
    y = torch.from_numpy(target)
    band = torch.from_numpy(field_edges(target, edge_level))

    def step(index: int) -> dict[str, float]:
        cosine_lr([optimiser], lr, index, steps)
        rows = torch.from_numpy(rng.integers(len(x), size=batch_size))
        error = (model(x[rows]) - y[rows]).abs()
        edge = band[rows]
        edge_l1 = (error * edge).sum() / edge.sum().clamp(min=1)
        loss = error.mean() + edge_l1
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return {"l1": error.mean().item(), "edge_l1": edge_l1.item()}

    progress = run_steps(
        step,
        total_steps=steps,
        state_path=state_path,
        modules={"model": model, "optimiser": optimiser},
        rng=rng,
        max_minutes=max_minutes,
        label="anatomy reader",
        ranks=ALONE,
    )
    return model.eval(), progress
