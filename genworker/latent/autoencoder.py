"""The autoencoder: a 256² study (every contrast) <-> a 32² latent grid.

The encoder sees only image channels. The decoder draws the image channels and, from the
same latent, the anatomy maps a lesion is planned on (brain tissue shares; lungs), so a
sampled latent carries its own anatomy. It is trained on the simulation's noise-free
renders (acquisition noise is the scanner model's job) with an L1 loss on pixels and on
their gradients (edges), on random crops: the networks are fully convolutional, so what
they learn on 128² crops holds on the whole image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genworker.latent.layers import Down, ResBlock, Up, assert_shape, group_norm
from genworker.latent.runs import ALONE, Progress, Ranks, cosine_lr, run_steps


@dataclass(frozen=True)
class AutoencoderConfig:
    image_channels: int  # e.g. 3 contrasts
    anatomy_channels: int  # maps the decoder also draws (0 for none)
    latent_channels: int = 8
    widths: tuple[int, ...] = (24, 48, 96, 128)  # at 256², 128², 64², 32²
    # Gaussian noise added to the latent in training, as a share of each channel's spread:
    # the decoder learns to draw the same image from a neighbourhood of a latent, so the
    # small errors of a GAN's latents decode to clean images.
    latent_noise: float = 0.0

    @property
    def factor(self) -> int:
        return 2 ** (len(self.widths) - 1)

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, data: dict) -> AutoencoderConfig:
        return cls(**{**data, "widths": tuple(data["widths"])})


class Encoder(nn.Module):
    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        w = config.widths
        layers: list[nn.Module] = [nn.Conv2d(config.image_channels, w[0], 3, padding=1)]
        for i in range(1, len(w)):
            layers += [Down(w[i - 1], w[i]), ResBlock(w[i], w[i])]
        layers += [group_norm(w[-1]), nn.SiLU(), nn.Conv2d(w[-1], config.latent_channels, 1)]
        self.net = nn.Sequential(*layers)
        self.config = config

    def forward(
        self,
        images: torch.Tensor,  # [n, image_channels, H, W] in [0, 1], H and W divisible by 8
    ) -> torch.Tensor:  # [n, latent_channels, H / 8, W / 8]
        assert_shape(images, [None, self.config.image_channels, None, None])
        return self.net(images * 2 - 1)


class Decoder(nn.Module):
    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        w = config.widths[::-1]
        layers: list[nn.Module] = [nn.Conv2d(config.latent_channels, w[0], 3, padding=1)]
        layers.append(ResBlock(w[0], w[0]))
        for i in range(1, len(w)):
            layers += [Up(w[i - 1], w[i]), ResBlock(w[i], w[i])]
        out = config.image_channels + config.anatomy_channels
        layers += [group_norm(w[-1]), nn.SiLU(), nn.Conv2d(w[-1], out, 3, padding=1)]
        self.net = nn.Sequential(*layers)
        self.config = config

    def forward(
        self,
        latent: torch.Tensor,  # [n, latent_channels, h, w]
    ) -> torch.Tensor:  # [n, image_channels + anatomy_channels, 8h, 8w], about [0, 1]
        assert_shape(latent, [None, self.config.latent_channels, None, None])
        return self.net(latent) * 0.5 + 0.5


class Autoencoder(nn.Module):
    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        # Per-channel mean and std of the training latents: the GAN and the renderer work on
        # standardised latents, set once the autoencoder is trained.
        self.register_buffer("latent_mean", torch.zeros(config.latent_channels))
        self.register_buffer("latent_std", torch.ones(config.latent_channels))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised latents [n, L, H/8, W/8] of images [n, C, H, W] in [0, 1]."""
        raw = self.encoder(images)
        return (raw - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def decode(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [n, C, H, W] in [0, 1] and anatomy maps [n, A, H, W] (non-negative, and
        unbounded above: a lung 190 mm thick is 1.9 dm) of standardised latents."""
        raw = latents * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        out = self.decoder(raw)
        c = self.config.image_channels
        return out[:, :c].clamp(0, 1), out[:, c:].clamp(min=0)


class NoisyCodec(nn.Module):
    """Encode, perturb the latent by ``latent_noise`` of its per-channel spread, decode."""

    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.decoder = model.decoder
        self.noise = model.config.latent_noise

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        latent = self.encoder(images)
        if self.noise > 0:
            spread = latent.detach().std(dim=(0, 2, 3), keepdim=True)
            latent = latent + self.noise * spread * torch.randn_like(latent)
        return self.decoder(latent)


def gradient_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean |difference| of the horizontal and vertical finite differences of a and b."""
    dx = (a[..., :, 1:] - a[..., :, :-1]) - (b[..., :, 1:] - b[..., :, :-1])
    dy = (a[..., 1:, :] - a[..., :-1, :]) - (b[..., 1:, :] - b[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


@dataclass
class AutoencoderData:
    images: np.ndarray  # float16 [N, C, R, R] noise-free renders in [0, 1]
    anatomy: np.ndarray  # float16 [N, A, R, R]
    has_anatomy: np.ndarray  # bool [N]: the anatomy maps describe the image (normal ones)
    lesions: np.ndarray | None = None  # bool [N, R, R]: where lesions are (weighted up)


LESION_WEIGHT = 4.0  # extra weight of the pixels in and around a lesion: few, but taught on


def _crop_batch(
    data: AutoencoderData,
    rng: np.random.Generator,
    batch: int,
    crop: int,
    keep: slice = slice(None),  # the rows of the batch this rank trains on
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = rng.integers(len(data.images), size=batch)
    size = data.images.shape[-1]
    tops = rng.integers(0, size - crop + 1, size=batch) // 8 * 8
    lefts = rng.integers(0, size - crop + 1, size=batch) // 8 * 8
    rows, tops, lefts = rows[keep], tops[keep], lefts[keep]
    batch = len(rows)
    corners = list(zip(rows, tops, lefts, strict=True))
    images = np.stack([data.images[r, :, t : t + crop, s : s + crop] for r, t, s in corners])
    anatomy = np.stack([data.anatomy[r, :, t : t + crop, s : s + crop] for r, t, s in corners])
    if data.lesions is None:
        weight = np.ones((batch, 1, crop, crop), np.float32)
    else:
        lesions = np.stack([data.lesions[r, t : t + crop, s : s + crop] for r, t, s in corners])
        weight = 1.0 + LESION_WEIGHT * lesions[:, None].astype(np.float32)
    return (
        torch.from_numpy(images.astype(np.float32)),
        torch.from_numpy(anatomy.astype(np.float32)),
        torch.from_numpy(data.has_anatomy[rows]),
        torch.from_numpy(weight),
    )


def train_autoencoder(
    data: AutoencoderData,
    config: AutoencoderConfig,
    *,
    out_dir: Path,
    steps: int,
    batch_size: int = 8,
    crop: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    max_minutes: float | None = None,
    max_steps: int | None = None,
    ranks: Ranks = ALONE,  # under torchrun: batch_size crops per rank
) -> tuple[Autoencoder, Progress]:
    """Train (or continue training) the autoencoder; sets its latent statistics at the end.

    Under torchrun the lesion-weighted pixel loss is normalised by each rank's weights, so
    a step is close to, not exactly, one process's step on the global batch."""
    torch.manual_seed(seed)
    model = Autoencoder(config).to(ranks.device)
    codec = ranks.wrap(NoisyCodec(model))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(seed)

    def step(index: int) -> dict[str, float]:
        cosine_lr([optimiser], lr, index, steps)
        batch = _crop_batch(data, rng, batch_size * ranks.world, crop, ranks.share(batch_size))
        images, anatomy, has_anatomy, weight = (part.to(ranks.device) for part in batch)
        out = codec(images)
        c = config.image_channels
        pixel = (weight * (out[:, :c] - images).abs()).mean() / weight.mean()
        edges = gradient_l1(out[:, :c], images)
        loss = pixel + edges
        anatomy_loss = torch.zeros(())
        if config.anatomy_channels and has_anatomy.any():
            anatomy_loss = F.l1_loss(out[has_anatomy, c:], anatomy[has_anatomy])
            loss = loss + 0.5 * anatomy_loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return {"pixel": pixel.item(), "edges": edges.item(), "anatomy": anatomy_loss.item()}

    out_dir.mkdir(parents=True, exist_ok=True)
    progress = run_steps(
        step,
        total_steps=steps,
        state_path=out_dir / "autoencoder-state.pt",
        modules={"model": model, "optimiser": optimiser},
        rng=rng,
        max_minutes=max_minutes,
        max_steps=max_steps,
        label="autoencoder",
        ranks=ranks,
    )
    model.cpu()
    set_latent_statistics(model, data.images)
    return model, progress


@torch.no_grad()
def set_latent_statistics(model: Autoencoder, images: np.ndarray, n: int = 256) -> None:
    """Per-channel mean and std of the raw latents of up to ``n`` images, evenly picked."""
    picked = images[np.linspace(0, len(images) - 1, min(n, len(images))).astype(int)]
    latents = torch.cat(
        [
            model.encoder(torch.from_numpy(chunk.astype(np.float32)))
            for chunk in np.array_split(picked, max(1, len(picked) // 16))
        ]
    )
    model.latent_mean.copy_(latents.mean(dim=(0, 2, 3)))
    model.latent_std.copy_(latents.std(dim=(0, 2, 3)).clamp(min=1e-3))


@torch.no_grad()
def encode_all(model: Autoencoder, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """Standardised latents float32 [N, L, R/8, R/8] of images [N, C, R, R]."""
    return np.concatenate(
        [
            model.encode(torch.from_numpy(images[i : i + batch].astype(np.float32))).numpy()
            for i in range(0, len(images), batch)
        ]
    )
