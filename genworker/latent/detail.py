"""The detail network: a patient's full 32² latent grid from its coarse 8x8 outline.

The anatomy GAN draws a patient at the coarse grid (the latents average-pooled 4x4 and
standardised again), where its game stays balanced on the CPU: at 32² the discriminator
wins within a few hundred steps and the generator draws one anatomy for every z
(docs/engine.md). This network adds back what pooling removed. It learns from the
encoded normal subjects, coarse -> full, by L1 (which alone draws the mean: smooth
cortex) plus a pix2pix-style adversarial term: a small patch discriminator judges
(full, coarse) pairs, which asks for detail that looks like real latents' (folding,
sulci) and fits the outline it was given. The mapping is deterministic: a patient's
anatomy is a function of its coarse grid, so of its z, age and sex.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genworker.latent.layers import ResBlock
from genworker.latent.runs import ALONE, Progress, Ranks, cosine_lr, run_steps

ADAM_BETAS = (0.5, 0.99)


@dataclass(frozen=True)
class DetailConfig:
    latent_channels: int = 8
    factor: int = 4  # full grid side / coarse grid side
    width: int = 64
    blocks: int = 4
    adversarial: float = 0.05  # weight of the patch discriminator's term beside L1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DetailConfig:
        return cls(**data)


class DetailNet(nn.Module):
    """Coarse standardised latents [n, L, r, r] -> full standardised latents [n, L, fr, fr]:
    the coarse grid upsampled bilinearly plus a learnt residual."""

    def __init__(self, config: DetailConfig) -> None:
        super().__init__()
        self.config = config
        c = config.latent_channels
        self.body = nn.Sequential(
            nn.Conv2d(c, config.width, 3, padding=1),
            *[ResBlock(config.width, config.width) for _ in range(config.blocks)],
            nn.Conv2d(config.width, c, 3, padding=1),
        )
        # Per-channel mean and std of the pooled training latents, set before training.
        self.register_buffer("coarse_mean", torch.zeros(c))
        self.register_buffer("coarse_std", torch.ones(c))

    def coarse(self, latents: torch.Tensor) -> torch.Tensor:
        """The standardised coarse grid of full latents."""
        pooled = F.avg_pool2d(latents, self.config.factor)
        return (pooled - self.coarse_mean[:, None, None]) / self.coarse_std[:, None, None]

    def upsampled(self, coarse: torch.Tensor) -> torch.Tensor:
        raw = coarse * self.coarse_std[:, None, None] + self.coarse_mean[:, None, None]
        return F.interpolate(raw, scale_factor=self.config.factor, mode="bilinear")

    def forward(self, coarse: torch.Tensor) -> torch.Tensor:
        up = self.upsampled(coarse)
        return up + self.body(up)


class PatchDiscriminator(nn.Module):
    """Logits per patch of a (full latent, upsampled coarse) pair, at a quarter of the
    grid's side."""

    def __init__(self, config: DetailConfig) -> None:
        super().__init__()
        c, w = config.latent_channels, config.width
        self.net = nn.Sequential(
            nn.Conv2d(2 * c, w, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 1, 3, padding=1),
        )

    def forward(self, full: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([full, up], dim=1))


def set_coarse_statistics(model: DetailNet, latents: np.ndarray) -> None:
    pooled = F.avg_pool2d(torch.from_numpy(latents), model.config.factor)
    model.coarse_mean.copy_(pooled.mean(dim=(0, 2, 3)))
    model.coarse_std.copy_(pooled.std(dim=(0, 2, 3)).clamp(min=1e-3))


@torch.no_grad()
def coarse_all(model: DetailNet, latents: np.ndarray) -> np.ndarray:
    """float32 [N, L, r, r]: the anatomy GAN's training grids."""
    return model.coarse(torch.from_numpy(latents)).numpy()


@torch.no_grad()
def redraw_all(model: DetailNet, latents: np.ndarray, batch: int = 64) -> np.ndarray:
    """float32 [N, L, R, R]: each full latent drawn again from its own coarse grid."""
    return np.concatenate(
        [
            model(model.coarse(torch.from_numpy(latents[i : i + batch]))).numpy()
            for i in range(0, len(latents), batch)
        ]
    )


@torch.no_grad()
def held_out_l1(model: DetailNet, latents: np.ndarray) -> tuple[float, float]:
    """Mean |full - detailed(coarse(full))| and the same for plain bilinear upsampling."""
    full = torch.from_numpy(latents)
    coarse = model.coarse(full)
    return (
        float((model(coarse) - full).abs().mean()),
        float((model.upsampled(coarse) - full).abs().mean()),
    )


def train_detail(
    latents: np.ndarray,  # float32 [N, L, R, R] standardised normal latents
    config: DetailConfig,
    *,
    out_dir: Path,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    lr_floor: float = 1.0,  # the share of lr left at the end of a cosine decay (1: none)
    seed: int = 0,
    max_minutes: float | None = None,
    max_steps: int | None = None,
    ranks: Ranks = ALONE,  # under torchrun: batch_size rows per rank
) -> tuple[DetailNet, Progress]:
    """L1 plus ``config.adversarial`` x the non-saturating loss of a patch discriminator."""
    torch.manual_seed(seed)
    model = DetailNet(config)
    set_coarse_statistics(model, latents)
    model.to(ranks.device)
    critic = PatchDiscriminator(config).to(ranks.device)
    net, judge = ranks.wrap(model), ranks.wrap(critic)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=ADAM_BETAS)
    opt_D = torch.optim.Adam(critic.parameters(), lr=lr, betas=ADAM_BETAS)
    rng = np.random.default_rng(seed)

    def step(index: int) -> dict[str, float]:
        cosine_lr([opt, opt_D], lr, index, steps, lr_floor)
        rows = rng.integers(len(latents), size=batch_size * ranks.world)
        full = torch.from_numpy(latents[rows[ranks.share(batch_size)]]).to(ranks.device)
        coarse = model.coarse(full)
        up = model.upsampled(coarse)
        made = net(coarse)
        l1 = (made - full).abs().mean()
        adversarial = F.softplus(-judge(made, up)).mean()
        loss = l1 + config.adversarial * adversarial
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        logits = judge(torch.cat([made.detach(), full]), torch.cat([up, up]))  # one pass: DDP
        fake_logits, real_logits = logits.chunk(2)
        loss_D = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        return {"l1": l1.item(), "adversarial": adversarial.item(), "loss_D": loss_D.item()}

    out_dir.mkdir(parents=True, exist_ok=True)
    progress = run_steps(
        step,
        total_steps=steps,
        state_path=out_dir / "detail-state.pt",
        modules={"model": model, "critic": critic, "opt": opt, "opt_D": opt_D},
        rng=rng,
        max_minutes=max_minutes,
        max_steps=max_steps,
        label="detail",
        ranks=ranks,
    )
    return model.cpu().eval(), progress
