"""The lesion segmenter: a U-Net trained on the simulation's acquired images and exact masks.

It checks that a generated image shows the lesion its case stores: every image is
segmented and a case is kept only when the planned mask and the segmentation agree
(:func:`dice`). It works at half resolution (128² for 256² images) and its output is
brought back to full size bilinearly.

Its loss weighs a lesion's pixels as much as the rest of its image, so that a nodule's
hundred pixels are learnt at all; that weighting moves the logit at which a pixel is best
called lesion well above 0 (by about the log of the background-to-lesion ratio). Training
ends by choosing that operating point on training images (:func:`calibrate_threshold`),
which the network keeps as its ``threshold``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genworker.latent.layers import UNet, assert_shape
from genworker.latent.runs import ALONE, Progress, Ranks, cosine_lr, run_steps


@dataclass(frozen=True)
class SegmenterConfig:
    image_channels: int
    widths: tuple[int, ...] = (16, 32, 64, 96)

    def to_dict(self) -> dict:
        return {"image_channels": self.image_channels, "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, data: dict) -> SegmenterConfig:
        return cls(data["image_channels"], tuple(data["widths"]))


class Segmenter(UNet):
    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__(config.image_channels, 1, config.widths)
        self.config = config
        self.register_buffer("threshold", torch.zeros(()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Segmenters saved before the threshold was calibrated segment at logit 0.
        state_dict.setdefault(prefix + "threshold", torch.zeros(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(
        self,
        images: torch.Tensor,  # [n, image_channels, R, R] in [0, 1], R divisible by 16
    ) -> torch.Tensor:  # [n, R, R] logits of "lesion"
        assert_shape(images, [None, self.config.image_channels, None, None])
        return super().forward(images)[:, 0]

    @torch.no_grad()
    def segment(self, images: torch.Tensor) -> torch.Tensor:
        """bool [n, R, R]: the lesion as this network sees it."""
        return self(images) > self.threshold


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean masks; 1.0 when both are empty."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float((a & b).sum()) / total


THRESHOLDS = np.arange(-4.0, 10.01, 0.5)  # logits tried by calibrate_threshold


def calibrate_threshold(logits: np.ndarray, masks: np.ndarray) -> float:
    """The logit threshold of ``THRESHOLDS`` with the highest mean Dice over the images
    [n, R, R] that have a lesion (the images a case is checked on)."""
    lesion = masks.any(axis=(1, 2))
    if not lesion.any():
        raise ValueError("calibrating a segmenter needs images with a lesion")
    pairs = list(zip(logits[lesion], masks[lesion], strict=True))
    scores = [np.mean([dice(seen > t, mask) for seen, mask in pairs]) for t in THRESHOLDS]
    return float(THRESHOLDS[int(np.argmax(scores))])


@dataclass(frozen=True)
class SegmenterData:
    clean: np.ndarray  # float16 [N, C, R, R] noise-free renders
    masks: np.ndarray  # bool [N, R, R]
    acquire: Callable[[np.ndarray, np.random.Generator], np.ndarray]  # rows' noisy images


def segmentation_losses(
    logits: torch.Tensor, masks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(binary cross-entropy, mean soft Dice over the images that have a lesion).

    A chest nodule is ~0.1% of a film's pixels, an effusion a hundred times more. Plain
    cross-entropy and a soft Dice over every image taught the network to find no nodule at
    all (its logits inside nodules sank to -7, where neither term's gradient reaches). So
    each image's cross-entropy is the mean of its lesion pixels' and its background's, and
    the images weigh alike (a nodule's few pixels as much as an effusion's many); images
    without a lesion answer to the background term only (in their soft Dice any positive
    pixel scores against an empty target)."""
    per_pixel = F.binary_cross_entropy_with_logits(logits, masks, reduction="none").flatten(1)
    lesion = masks.flatten(1) > 0.5
    lesion_pixels = lesion.sum(dim=1)
    background = (per_pixel * ~lesion).sum(dim=1) / (~lesion).sum(dim=1).clamp(min=1)
    inside = (per_pixel * lesion).sum(dim=1) / lesion_pixels.clamp(min=1)
    bce = torch.where(lesion_pixels > 0, (background + inside) / 2, background).mean()
    has_lesion = masks.flatten(1).any(dim=1)
    if not has_lesion.any():
        return bce, torch.ones((), device=logits.device)
    probability = torch.sigmoid(logits[has_lesion])
    target = masks[has_lesion]
    overlap = (probability * target).sum(dim=(1, 2))
    soft_dice = (2 * overlap + 1) / (probability.sum(dim=(1, 2)) + target.sum(dim=(1, 2)) + 1)
    return bce, soft_dice.mean()


def train_segmenter(
    data: SegmenterData,
    config: SegmenterConfig,
    *,
    out_dir: Path,
    steps: int,
    batch_size: int = 12,
    lr: float = 2e-3,
    seed: int = 0,
    max_minutes: float | None = None,
    max_steps: int | None = None,
    label: str = "segmenter",
    ranks: Ranks = ALONE,  # under torchrun: batch_size rows per rank
) -> tuple[Segmenter, Progress]:
    """Binary cross-entropy plus soft Dice on acquired (noisy), left-right mirrored images.

    Under torchrun every rank acquires the whole global batch (the noise comes from the
    shared random stream) and trains on its share."""
    torch.manual_seed(seed)
    model = Segmenter(config).to(ranks.device)
    net = ranks.wrap(model)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(seed)

    def step(index: int) -> dict[str, float]:
        cosine_lr([optimiser], lr, index, steps)
        rows = rng.integers(len(data.clean), size=batch_size * ranks.world)
        mine = ranks.share(batch_size)
        images = torch.from_numpy(data.acquire(rows, rng)[mine]).to(ranks.device)
        masks = torch.from_numpy(data.masks[rows[mine]]).float().to(ranks.device)
        if rng.random() < 0.5:
            images, masks = images.flip(-1), masks.flip(-1)
        bce, soft_dice = segmentation_losses(net(images), masks)
        optimiser.zero_grad(set_to_none=True)
        (bce + (1 - soft_dice)).backward()
        optimiser.step()
        return {"bce": bce.item(), "dice": soft_dice.item()}

    out_dir.mkdir(parents=True, exist_ok=True)
    progress = run_steps(
        step,
        total_steps=steps,
        state_path=out_dir / f"{label}-state.pt",
        modules={"model": model, "optimiser": optimiser},
        rng=rng,
        max_minutes=max_minutes,
        max_steps=max_steps,
        label=label,
        ranks=ranks,
    )
    if progress.step >= steps:
        model.threshold.fill_(training_threshold(model, data, seed, ranks.device))
    return model.cpu().eval(), progress


CALIBRATION_IMAGES = 240  # training images with a lesion the threshold is chosen on


@torch.no_grad()
def training_threshold(
    model: Segmenter, data: SegmenterData, seed: int, device: torch.device | str
) -> float:
    """:func:`calibrate_threshold` on a fixed draw of acquired training images (the network
    has no batch statistics: training and inference modes compute alike)."""
    rng = np.random.default_rng([seed, 1])
    lesion = np.flatnonzero(data.masks.any(axis=(1, 2)))
    rows = rng.choice(lesion, size=min(CALIBRATION_IMAGES, len(lesion)), replace=False)
    logits = np.concatenate(
        [
            model(torch.from_numpy(data.acquire(rows[i : i + 24], rng)).to(device)).cpu().numpy()
            for i in range(0, len(rows), 24)
        ]
    )
    return calibrate_threshold(logits, data.masks[rows])
