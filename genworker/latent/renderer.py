"""The lesion renderer: draws a planned lesion into a patient's latent grid.

Input: the patient's normal latent (standardised, [n, L, 32, 32]) and the lesion model's
maps at 128² (e.g. tumour density, necrosis, enhancement, oedema, texture and the mass
effect's displacement). Output: the latent of the same patient with that lesion. It
learns from pairs the simulation makes exactly (one subject rendered without and with
the finding), so the lesion it draws is the lesion that was planned: the renderer adds
to the normal latent, and what it adds is trained to be zero where the maps are empty.

Matching latents alone leaves a small lesion fainter than the simulation's: the decoder
smooths what spans one or two latent cells. With the autoencoder at hand, training also
decodes a window of the grid around each lesion and matches the change it makes in pixels
(rendered minus normal) to the simulation's own change, so what is judged is what the
image shows. Each step also perturbs the normal latent (the autoencoder's latent noise),
as a sampled patient's latent is never exactly an encoded one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genworker.latent.autoencoder import Autoencoder
from genworker.latent.layers import Down, ResBlock, Up, assert_shape
from genworker.latent.runs import ALONE, Progress, Ranks, cosine_lr, run_steps


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
    # float16 [N, C, R, R]: each image's noise-free pixels minus its track's normal image;
    # with an autoencoder, trains the pixel term (see the module's docstring).
    change: np.ndarray | None = None
    # bool [N, R, R] each image's lesion mask and float16 [N, C, R, R] its noise-free
    # pixels; with an autoencoder, they train the contrast term.
    masks: np.ndarray | None = None
    clean: np.ndarray | None = None

    def on_redraws(self, redrawn: np.ndarray) -> RendererData:
        """The same pairs with each track's normal latent replaced by ``redrawn`` [K, L, 32,
        32] (the detail network's redraw of its coarse grid, which is what a sampled patient's
        latent is) and each target moved with it: the lesion is learnt on the patients the
        sampler draws, whose brains hold less CSF than the encoded subjects'."""
        shift = redrawn - self.normal
        return replace(self, normal=redrawn, target=self.target + shift[self.track])


PIXEL_WINDOW = 12  # latent cells decoded around a lesion (96 pixels at 8 per cell)
PIXEL_MARGIN = 2  # cells at the window's edge left out of the loss (the decoder's reach)
PIXEL_WEIGHT = 10.0  # of the pixel term against the latent L1
CONTRAST_FLOOR = 0.02  # a contrast's error is relative to its size, or to this if smaller


def lesion_windows(maps: torch.Tensor, grid: int, window: int) -> torch.Tensor:
    """int [n, 2]: the top-left (row, column) on the latent grid of the ``window``-cell
    square centred on each lesion (its first map's mass), kept inside the grid."""
    side = maps.shape[-1]
    density = maps[:, 0].clamp(min=0)
    coordinates = (torch.arange(side, dtype=maps.dtype) + 0.5) * (grid / side)
    mass = density.sum(dim=(1, 2)).clamp(min=1e-6)
    centre = torch.stack(
        [
            (density.sum(dim=2) * coordinates).sum(dim=1) / mass,
            (density.sum(dim=1) * coordinates).sum(dim=1) / mass,
        ],
        dim=1,
    )
    return (centre - window / 2).round().clamp(0, grid - window).long()


def _crop(x: torch.Tensor, corners: torch.Tensor, size: int, scale: int = 1) -> torch.Tensor:
    return torch.stack(
        [
            x[i, :, r * scale : (r + size) * scale, c * scale : (c + size) * scale]
            for i, (r, c) in enumerate(corners.tolist())
        ]
    )


def decode_windows(
    autoencoder: Autoencoder, latents: torch.Tensor, corners: torch.Tensor
) -> torch.Tensor:
    """[n, C, w, w]: the decoder's image of the ``PIXEL_WINDOW``-cell square of each latent
    [n, L, g, g] whose top-left cell is at ``corners`` (from ``lesion_windows``)."""
    decoded, _ = autoencoder.decode(_crop(latents, corners, PIXEL_WINDOW))
    return decoded


def pixel_change_l1(
    after: torch.Tensor,  # [n, C, w, w] the decoded windows of the latents with the lesion
    before: torch.Tensor,  # [n, C, w, w] the same windows of the patients' normal latents
    change: torch.Tensor,  # [n, C, R, R] the simulation's change in pixels
    corners: torch.Tensor,  # [n, 2] the windows' top-left cells
) -> torch.Tensor:
    """L1 between the pixel change the rendered latents make and the simulation's, in a
    window around each lesion: its mean over the window plus its mean over the lesion (where
    the simulation changes the image, widened a little), so that a 1 cm nodule counts as
    much as an effusion."""
    factor = after.shape[-1] // PIXEL_WINDOW
    inner = slice(PIXEL_MARGIN * factor, (PIXEL_WINDOW - PIXEL_MARGIN) * factor)
    made = (after - before)[..., inner, inner]
    wanted = _crop(change, corners, PIXEL_WINDOW, factor)[..., inner, inner]
    on_lesion = (wanted.abs().amax(dim=1, keepdim=True) > 0.01).float()
    lesion = F.max_pool2d(on_lesion, 9, stride=1, padding=4)
    error = (made - wanted).abs().mean(dim=1, keepdim=True)
    on_lesion_mean = (error * lesion).sum(dim=(1, 2, 3)) / lesion.sum(dim=(1, 2, 3)).clamp(min=1)
    return error.mean() + on_lesion_mean.mean()


def contrast_error(
    made: torch.Tensor,  # [n, C, w, w] the decoded windows of the latents with the lesion
    image: torch.Tensor,  # [n, C, R, R] the simulation's noise-free image with the lesion
    masks: torch.Tensor,  # [n, 1, R, R] float, the lesion's mask
    corners: torch.Tensor,  # [n, 2] the windows' top-left cells
    ring_px: int,
) -> torch.Tensor:
    """Relative error of each contrast's lesion contrast in the decoded image (its mean in
    the mask minus its mean in the ring ``ring_px`` around it) against the simulation's:
    what a reader sees and what contrast-to-noise measures. On a glioma's T1 that contrast is
    the small difference of two large ones (the white matter the tumour sits in is brighter
    than its surround; the tumour darkens it by more), so a lesion drawn at 85% of the
    simulation's change keeps only about half its contrast; weighed relative to its size,
    T1 counts as much as FLAIR and T1c."""
    factor = made.shape[-1] // PIXEL_WINDOW
    wanted = _crop(image, corners, PIXEL_WINDOW, factor)
    mask = _crop(masks, corners, PIXEL_WINDOW, factor)
    ring = F.max_pool2d(mask, 2 * ring_px + 1, stride=1, padding=ring_px) - mask
    inside, around = mask.sum(dim=(2, 3)).clamp(min=1), ring.sum(dim=(2, 3)).clamp(min=1)

    def contrast(x: torch.Tensor) -> torch.Tensor:  # [n, C]
        return (x * mask).sum(dim=(2, 3)) / inside - (x * ring).sum(dim=(2, 3)) / around

    target = contrast(wanted)
    relative = (contrast(made) - target).abs() / target.abs().clamp(min=CONTRAST_FLOOR)
    drawn = mask.sum(dim=(1, 2, 3)) > 0
    return relative[drawn].mean() if bool(drawn.any()) else relative.sum() * 0


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
    autoencoder: Autoencoder | None = None,  # frozen; with ``data.change``, the pixel term
    contrast_weight: float = 0.0,  # of the contrast term (needs ``data.masks``, ``.clean``)
    ring_px: int = 0,  # the contrast term's ring around the mask
) -> tuple[LesionRenderer, Progress]:
    """L1 between the rendered and the simulated latent, weighted up where the lesion is;
    plus the pixel term and the contrast term where the data and an autoencoder allow."""
    pixels = autoencoder is not None and data.change is not None
    contrasts = contrast_weight > 0
    if contrasts and not (pixels and data.masks is not None and data.clean is not None):
        raise ValueError(
            "the renderer's contrast term needs an autoencoder and the data's change, masks "
            "and clean images"
        )
    jitter = 0.0
    if autoencoder is not None:
        autoencoder = autoencoder.to(ranks.device).eval().requires_grad_(False)
        jitter = autoencoder.config.latent_noise
    torch.manual_seed(seed)
    model = LesionRenderer(config).to(ranks.device)
    net = ranks.wrap(model)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(seed)

    def step(index: int) -> dict[str, float]:
        cosine_lr([optimiser], lr, index, steps)
        rows = rng.integers(len(data.target), size=batch_size * ranks.world)
        rows = rows[ranks.share(batch_size)]
        normal = torch.from_numpy(data.normal[data.track[rows]]).to(ranks.device)
        target = torch.from_numpy(data.target[rows]).to(ranks.device)
        maps = torch.from_numpy(data.maps[rows].astype(np.float32)).to(ranks.device)
        if jitter > 0:
            shift = jitter * torch.from_numpy(
                rng.standard_normal(normal.shape).astype(np.float32)
            ).to(ranks.device)
            normal, target = normal + shift, target + shift
        out = net(normal, maps)
        near = F.max_pool2d(maps[:, :1], 4) > 0.05  # the lesion's footprint on the grid
        weight = 1.0 + 4.0 * F.max_pool2d(near.float(), 5, stride=1, padding=2)
        latent_l1 = (weight * (out - target).abs()).mean()
        values = {"l1": latent_l1.item()}
        values.update({"pixel_l1": 0.0} if pixels else {})
        values.update({"contrast_error": 0.0} if contrasts else {})
        loss = latent_l1
        lesion = near.flatten(1).any(dim=1)
        if pixels and bool(lesion.any()):
            picked = lesion.cpu().numpy()
            corners = lesion_windows(maps[lesion], out.shape[-1], PIXEL_WINDOW)
            after = decode_windows(autoencoder, out[lesion], corners)
            with torch.no_grad():
                before = decode_windows(autoencoder, normal[lesion], corners)
            change = torch.from_numpy(data.change[rows[picked]].astype(np.float32))
            pixel_l1 = pixel_change_l1(after, before, change.to(ranks.device), corners)
            values["pixel_l1"] = pixel_l1.item()
            loss = loss + PIXEL_WEIGHT * pixel_l1
            if contrasts:
                masks = torch.from_numpy(data.masks[rows[picked], None].astype(np.float32))
                clean = torch.from_numpy(data.clean[rows[picked]].astype(np.float32))
                error = contrast_error(
                    after, clean.to(ranks.device), masks.to(ranks.device), corners, ring_px
                )
                values["contrast_error"] = error.item()
                loss = loss + contrast_weight * error
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return values

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
