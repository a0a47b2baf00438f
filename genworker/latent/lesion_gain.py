"""The lesion gain: one factor per contrast on what the renderer changes in the image.

The renderer learns a lesion's change with L1 terms, which draw the edge of what is
uncertain softer than the simulation does, and a sampled patient's latent (the detail
network's redraw of a coarse grid) is not what it learnt on exactly. On the recipe's
held-out gliomas at their most severe timepoint, the brain's lesions keep 0.90 / 0.84 /
0.89 of the simulation's T1 / FLAIR / T1c contrast against the ring around them
(docs/engine.md). A model with a lesion gain multiplies the change its renderer makes in
the decoded image (the image with the lesion minus the same patient's image without it) by
one factor per contrast, fitted once on those lesions so that the contrast the image shows
(the lesion's mean against the ring's) is the simulation's. It is fitted to that contrast,
not to the change: a glioma's T1 contrast is the small difference of two large ones (the
white matter it sits in is brighter than its ring; the tumour darkens it by more), so a
factor that restores the change would overshoot it by half. Where the renderer changes
nothing, the image is the patient's own, so the anatomy outside the lesion and every image
without one stay as they were.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from genworker.latent.autoencoder import Autoencoder
from genworker.latent.detail import DetailNet
from genworker.latent.renderer import LesionRenderer

MIN_AREA_PX = 100  # a lesion smaller than this is left out of the fit
MIN_RING_PX = 20  # as few ring pixels as the evaluation's contrast-to-noise accepts
BATCH = 16


class LesionGain(nn.Module):
    """The images a renderer's lesions decode to [n, C, R, R] and the same patient's
    without them [n or 1, C, R, R] -> the images with each contrast's change multiplied."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.config = {"channels": channels}
        self.register_buffer("gain", torch.ones(channels))  # changes nothing until fitted

    def forward(self, drawn: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
        return (normal + self.gain[:, None, None] * (drawn - normal)).clamp(0, 1)


def lesion_ring(mask: np.ndarray, body: np.ndarray, ring_px: int) -> np.ndarray:
    """bool [R, R]: the body within ``ring_px`` of the lesion ``mask``, outside it (the ring
    the evaluation's contrast-to-noise measures against)."""
    return ndimage.binary_dilation(mask, iterations=ring_px) & ~mask & body


def mask_ring_step(image: np.ndarray, mask: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """float [C]: each contrast's mean in the mask minus its mean in the ring."""
    image = np.asarray(image, np.float32)
    return np.array([c[mask].mean() - c[ring].mean() for c in image], np.float64)


def fit_gain(wanted: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """float32 [C]: the summed mask-against-ring step the changes should make [N, C] over
    the step the renderer's changes make, per contrast."""
    return (np.sum(wanted, axis=0) / np.sum(drawn, axis=0)).astype(np.float32)


@torch.no_grad()
def drawn_images(
    autoencoder: Autoencoder,
    detail: DetailNet,
    renderer: LesionRenderer,
    normal_latents: np.ndarray,  # float32 [N, L, g, g] each lesion's patient, encoded
    maps: np.ndarray,  # [N, M, m, m] each lesion's maps
) -> tuple[np.ndarray, np.ndarray]:
    """float32 [N, C, R, R] twice: the decoded images of the renderer's lesions and of the
    same patients without them, each patient the detail network's redraw of its encoded
    latent (what a sampled patient's latent is)."""
    lesioned, normal = [], []
    for i in range(0, len(maps), BATCH):
        redrawn = detail(detail.coarse(torch.from_numpy(normal_latents[i : i + BATCH])))
        lesion = renderer(redrawn, torch.from_numpy(np.asarray(maps[i : i + BATCH], np.float32)))
        decoded, _ = autoencoder.decode(torch.cat([lesion, redrawn]))
        n = len(redrawn)
        lesioned.append(decoded[:n].numpy())
        normal.append(decoded[n:].numpy())
    return np.concatenate(lesioned), np.concatenate(normal)


def fit_lesion_gain(
    autoencoder: Autoencoder,
    detail: DetailNet,
    renderer: LesionRenderer,
    *,
    normal_latents: np.ndarray,  # float32 [N, L, g, g] each lesion's patient, encoded
    maps: np.ndarray,  # [N, M, m, m]
    images: np.ndarray,  # [N, C, R, R] the simulation's noise-free images of the lesions
    masks: np.ndarray,  # bool [N, R, R]
    bodies: Sequence[np.ndarray],  # bool [R, R] per lesion
    ring_px: int,
    channels: Sequence[str],
) -> tuple[LesionGain, dict]:
    """The gain of ``renderer`` fitted on these simulated lesions (each on its own patient's
    redraw), and its record (how many lesions it was fitted on, each contrast's gain)."""
    lesioned, normal = drawn_images(autoencoder, detail, renderer, normal_latents, maps)
    wanted_steps, drawn_steps = [], []
    for image, drawn, patient, mask, body in zip(
        images, lesioned, normal, masks, bodies, strict=True
    ):
        ring = lesion_ring(mask, body, ring_px)
        if mask.sum() < MIN_AREA_PX or ring.sum() < MIN_RING_PX:
            continue
        # The change must add what the patient's own contrast in the mask does not give.
        wanted = mask_ring_step(image, mask, ring) - mask_ring_step(patient, mask, ring)
        wanted_steps.append(wanted)
        drawn_steps.append(mask_ring_step(drawn - patient, mask, ring))
    if not wanted_steps:
        raise ValueError(f"no lesion of {MIN_AREA_PX} pixels or more to fit the gain on")
    gain = fit_gain(np.array(wanted_steps), np.array(drawn_steps))
    wrong = [c for c, g in zip(channels, gain, strict=True) if not np.isfinite(g) or g <= 0]
    if wrong:
        raise ValueError(
            f"the renderer does not draw the simulation's {', '.join(wrong)} change on these "
            "lesions (a gain would have to turn it over): train it longer"
        )
    fitted = LesionGain(len(channels))
    fitted.gain.copy_(torch.from_numpy(gain))
    record = {
        "lesions": len(wanted_steps),
        "gain": {c: round(float(g), 4) for c, g in zip(channels, gain, strict=True)},
    }
    return fitted, record
