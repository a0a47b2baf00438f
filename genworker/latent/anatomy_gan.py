"""The anatomy GAN: a patient's normal anatomy on the autoencoder's coarse latent grid, from
z, age and sex.

The networks are Gantry's conditional StyleGAN2 and cGAN (:mod:`genworker.networks`), here
drawing "images" of ``latent_channels`` channels at the coarse grid (8x8: the 32² latents
pooled, :mod:`genworker.latent.detail`, whose network draws the rest). Training follows
StyleGAN2-ADA: non-saturating logistic loss, lazy R1 on real latents, an EMA generator for
inference, and adaptive augmentation (integer translation and left-right mirroring of the
grid, applied to real and generated latents alike in front of the discriminator, its
probability steered so that the discriminator's sign on real latents stays near
``ADA_TARGET``). The StyleGAN2 also gets style mixing (two w's with a random crossover
layer) and lazy path-length regularisation, which keep w disentangled and smooth, so that
walking w changes the image evenly.

Under torchrun it trains data-parallel like the other stages (:mod:`genworker.latent.runs`):
every rank draws the same global batch, its z, style mixing, augmentation and instance
noise from streams all ranks hold alike and keeps its share; the generator's and the
discriminator's gradients are averaged, and so are the statistics that steer augmentation
and path length, so every rank holds the same networks and the same augment probability.
A step is close to, not exactly, one process's step on the global batch: the minibatch
standard deviation groups a rank's rows only, path length is judged on half of each rank's
rows, mode seeking's shortfall is clipped per rank, and the sliced distance compares each
rank's rows with its own share of the real batch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genworker.conditions import ConditionSchema
from genworker.latent.runs import ALONE, Progress, Ranks, run_steps
from genworker.networks import (
    ConditionalGenerator,
    GeneratorConfig,
    build_discriminator,
    build_generator,
)
from genworker.training import diversity_shortfall

R1_INTERVAL = 16
PL_INTERVAL = 4
ADA_INTERVAL = 4
ADA_TARGET = 0.6
ADA_KIMG = 20.0  # images over which p may move by 1
STYLE_MIXING = 0.9
PL_DECAY = 0.01
PL_WEIGHT = 2.0
ADAM_BETAS = (0.0, 0.99)
SLICED_DIRECTIONS = 128
ANATOMY_FINDINGS = ("normal",)  # the anatomy GAN draws normal anatomy only


@dataclass(frozen=True)
class AnatomyData:
    latents: np.ndarray  # float32 [N, L, r, r], standardised
    age: np.ndarray  # float32 [N]
    sex: np.ndarray  # int [N]

    def conditions(self, rows: np.ndarray) -> np.ndarray:
        schema = ConditionSchema(ANATOMY_FINDINGS)
        return schema.encode("normal", 0.0, self.age[rows], self.sex[rows])


def _shared_randn(
    n: int, shape: tuple[int, ...], generator: torch.Generator, ranks: Ranks
) -> torch.Tensor:
    """This rank's n rows of standard normal noise drawn for the global batch."""
    return torch.randn((n * ranks.world, *shape), generator=generator)[ranks.share(n)]


def augment_grid(
    x: torch.Tensor, p: float, generator: torch.Generator, ranks: Ranks = ALONE
) -> torch.Tensor:
    """Mirror left-right and translate by up to 1/8 of the side (reflecting), each with
    probability ``p`` per sample; x [n, c, h, w], this rank's rows of the global batch."""
    if p <= 0:
        return x
    n, _, h, w = x.shape
    share = ranks.share(n)
    flip = (torch.rand(n * ranks.world, generator=generator) < p)[share].to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    move = (torch.rand(n * ranks.world, generator=generator) < p)[share]
    reach = max(1, h // 8)
    shifts = torch.randint(-reach, reach + 1, (n * ranks.world, 2), generator=generator)
    shifts = shifts[share] * move[:, None]
    padded = F.pad(x, (reach, reach, reach, reach), mode="reflect")
    rows = [
        padded[i, :, reach + dy : reach + dy + h, reach + dx : reach + dx + w]
        for i, (dy, dx) in enumerate(shifts.tolist())
    ]
    return torch.stack(rows)


def subject_distance(latents: np.ndarray, rng: np.random.Generator, pairs: int = 512) -> float:
    """Mean absolute difference between the latents of two different subjects."""
    first = rng.integers(len(latents), size=pairs)
    second = (first + rng.integers(1, len(latents), size=pairs)) % len(latents)
    return float(np.abs(latents[first] - latents[second]).mean())


def sliced_distance(
    fake: torch.Tensor, real: torch.Tensor, directions: int, generator: torch.Generator
) -> torch.Tensor:
    """Sliced Wasserstein-2 distance between two equal batches of grids: both projected on
    ``directions`` random unit directions of the flattened grid, and each projection's sorted
    values compared. Every direction mixes all the cells, so the term sees how they vary
    together, which the discriminator left unlearnt on the chest (docs/engine.md)."""
    a, b = fake.flatten(1), real.flatten(1)
    towards = torch.randn(a.shape[1], directions, generator=generator).to(a.device)
    towards = towards / towards.norm(dim=0, keepdim=True)
    return ((a @ towards).sort(0).values - (b @ towards).sort(0).values).square().mean()


def _agreed(value: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """A scalar averaged over the ranks, on the CPU: the same on every rank."""
    return torch.tensor(ranks.mean({"value": value.item()})["value"], dtype=value.dtype)


class _Through(nn.Module):
    """Calls ``fn(net, *args)`` as its forward. DistributedDataParallel averages the
    gradients of what the forward of the module it wraps computes, so a loss that uses the
    network several ways (style mixing, the path-length Jacobian, mode seeking) is computed
    whole inside this forward."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, fn: Callable, *args: Any) -> Any:
        return fn(self.net, *args)


def _mixed_ws(
    G: ConditionalGenerator,
    z: torch.Tensor,
    cond: torch.Tensor,
    generator: torch.Generator,
    ranks: Ranks = ALONE,
) -> torch.Tensor:
    """w [n, num_ws, w_dim]; with probability STYLE_MIXING a second z takes over from a
    random layer on (StyleGAN2 only: the cGAN has one w)."""
    ws = G.mapping(z, cond)
    if G.num_ws == 1 or torch.rand((), generator=generator) >= STYLE_MIXING:
        return ws
    cut = int(torch.randint(1, G.num_ws, (), generator=generator))
    other_z = _shared_randn(len(z), z.shape[1:], generator, ranks).to(z.device)
    other = G.mapping(other_z, cond)
    ws = ws.clone()
    ws[:, cut:] = other[:, cut:]
    return ws


def _spread_terms(
    G: ConditionalGenerator,
    fake: torch.Tensor,
    real: torch.Tensor,
    cond: torch.Tensor,
    *,
    spread: float,
    mode_seeking: float,
    sliced: float,
    generator: torch.Generator,
    ranks: Ranks = ALONE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weighted terms that hold the generated latents ``fake`` to the real ones' spread:
    mode seeking (how far ``fake`` and latents of other z drawn with the same conditions
    fall short of two subjects' distance ``spread``) and the sliced distance to ``real``.
    Returns (their weighted sum, the shortfall); a term of weight 0 draws nothing from
    ``generator``, so runs without it keep their random streams."""
    loss = shortfall = torch.zeros((), device=fake.device)
    if mode_seeking > 0:
        other_z = _shared_randn(len(fake), (G.z_dim,), generator, ranks).to(fake.device)
        other = G.synthesis_network(G.mapping(other_z, cond), "random")
        shortfall = diversity_shortfall(fake, other, spread)
        loss = loss + mode_seeking * shortfall
    if sliced > 0:
        loss = loss + sliced * sliced_distance(fake, real, SLICED_DIRECTIONS, generator)
    return loss, shortfall


def _path_length_penalty(
    G: ConditionalGenerator,
    ws: torch.Tensor,
    pl_mean: torch.Tensor,
    generator: torch.Generator,
    ranks: Ranks = ALONE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """StyleGAN2's path-length regulariser: the Jacobian norm of image w.r.t. w held near
    its running mean (over every rank's rows). Returns (penalty, new mean)."""
    ws = ws.detach().requires_grad_(True)
    images = G.synthesis_network(ws, "random")
    noise = _shared_randn(len(ws), images.shape[1:], generator, ranks) / math.sqrt(
        images.shape[2] * images.shape[3]
    )
    (grad,) = torch.autograd.grad((images * noise.to(ws.device)).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    new_mean = pl_mean + PL_DECAY * (_agreed(lengths.mean().detach(), ranks) - pl_mean)
    return (lengths - new_mean.to(lengths.device)).square().mean(), new_mean


def train_anatomy_gan(
    data: AnatomyData,
    config: GeneratorConfig,
    *,
    out_dir: Path,
    steps: int,
    batch_size: int = 32,
    lr: float = 0.0025,
    r1_gamma: float = 0.05,
    instance_noise: float = 0.0,
    mode_seeking: float = 0.0,
    sliced: float = 0.0,
    ema_kimg: float = 2.0,
    seed: int = 0,
    max_minutes: float | None = None,
    max_steps: int | None = None,
    ranks: Ranks = ALONE,  # under torchrun: batch_size rows per rank
) -> tuple[ConditionalGenerator, Progress]:
    """Train (or continue) the anatomy GAN; returns the EMA generator.

    ``instance_noise`` adds Gaussian noise of that standard deviation to every latent the
    discriminator sees, real or generated: the autoencoder decodes a latent's neighbourhood
    to the same image, so differences below that scale do not show in pixels and the
    discriminator need not judge them. ``mode_seeking`` weighs a term that keeps two
    latents drawn with the same conditions and different z about as far apart as two
    subjects' latents (:func:`genworker.training.diversity_shortfall`), against the
    collapse to one anatomy for every z that both architectures showed. ``sliced`` weighs
    the sliced Wasserstein distance between the generated grids and the real batch drawn
    with the same conditions (:func:`sliced_distance`). Neither of the first two keeps a
    32² grid's discriminator from winning within a few hundred steps on the CPU
    (docs/engine.md); at 8x8 the game stays balanced.

    Each step seeds its random draws from the saved numpy stream, so a run resumed on the
    same number of ranks continues exactly."""
    torch.manual_seed(seed)
    device = torch.device(ranks.device)
    G = build_generator(config).to(device)
    D = build_discriminator(config).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    G_net = ranks.wrap(_Through(G))
    D_net = ranks.wrap(D)
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=ADAM_BETAS)
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=ADAM_BETAS)
    ada = torch.zeros(2)  # [augment probability, running sign of D on reals]
    pl_mean = torch.zeros(())
    rng = np.random.default_rng(seed)
    generator = torch.Generator()  # the draws every rank makes alike
    stylegan = config.architecture == "stylegan2"
    spread = subject_distance(data.latents, np.random.default_rng(seed))
    global_batch = batch_size * ranks.world

    def seen(x: torch.Tensor, p: float) -> torch.Tensor:
        """What the discriminator sees of latents x: augmented, then blurred by noise."""
        x = augment_grid(x, p, generator, ranks)
        if instance_noise > 0:
            noise = _shared_randn(len(x), x.shape[1:], generator, ranks).to(device)
            x = x + instance_noise * noise
        return x

    def generator_loss(
        G: ConditionalGenerator,
        index: int,
        z: torch.Tensor,
        cond: torch.Tensor,
        real: torch.Tensor,
        p: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Non-saturating loss (and, every PL_INTERVAL steps, path length; and mode
        seeking and the sliced distance); returns (loss, shortfall, the generated latents)."""
        ws = _mixed_ws(G, z, cond, generator, ranks)
        fake = G.synthesis_network(ws, "random")
        loss = F.softplus(-D(seen(fake, p), cond)).mean()
        if stylegan and index % PL_INTERVAL == 0:
            half = ws[: batch_size // 2]
            penalty, new_mean = _path_length_penalty(G, half, pl_mean, generator, ranks)
            pl_mean.copy_(new_mean)
            loss = loss + PL_WEIGHT * PL_INTERVAL * penalty
        spread_loss, shortfall = _spread_terms(
            G,
            fake,
            real,
            cond,
            spread=spread,
            mode_seeking=mode_seeking,
            sliced=sliced,
            generator=generator,
            ranks=ranks,
        )
        loss = loss + spread_loss
        return loss, shortfall, fake

    def step(index: int) -> dict[str, float]:
        p = float(ada[0])
        step_seed = int(rng.integers(2**62))
        generator.manual_seed(step_seed)
        torch.manual_seed(step_seed + ranks.rank)  # synthesis noise: each rank its own
        rows = rng.integers(len(data.latents), size=global_batch)[ranks.share(batch_size)]
        real = torch.from_numpy(data.latents[rows]).to(device)
        cond = torch.from_numpy(data.conditions(rows)).to(device)
        z = _shared_randn(batch_size, (config.z_dim,), generator, ranks).to(device)
        G.requires_grad_(True)
        D.requires_grad_(False)
        loss_G, shortfall, fake = G_net(generator_loss, index, z, cond, real, p)
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
        # Discriminator: logistic loss, lazy R1 on reals.
        G.requires_grad_(False)
        D.requires_grad_(True)
        real_aug = seen(real, p).detach()
        do_r1 = index % R1_INTERVAL == 0
        real_aug.requires_grad_(do_r1)
        logits_real = D_net(real_aug, cond)
        logits_fake = D_net(seen(fake.detach(), p), cond)
        loss_D = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        r1 = torch.zeros(())
        if do_r1:
            (grad,) = torch.autograd.grad(logits_real.sum(), real_aug, create_graph=True)
            r1 = grad.square().sum(dim=(1, 2, 3)).mean()
            loss_D = loss_D + r1_gamma / 2 * r1 * R1_INTERVAL
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        _update_ema(G_ema, G, global_batch, ema_kimg)
        ada[1] = 0.9 * ada[1] + 0.1 * _agreed(logits_real.detach().sign().mean(), ranks)
        if index % ADA_INTERVAL == 0:
            move = float(torch.sign(ada[1] - ADA_TARGET)) * global_batch * ADA_INTERVAL
            ada[0] = (ada[0] + move / (ADA_KIMG * 1000)).clamp(0.0, 0.8)
        return {
            "loss_G": loss_G.item(),
            "loss_D": loss_D.item(),
            "r1": r1.item(),
            "shortfall": shortfall.item(),
            "augment_p": float(ada[0]),
            "real_sign": float(ada[1]),
        }

    out_dir.mkdir(parents=True, exist_ok=True)

    class _Buffers(torch.nn.Module):  # ADA and path-length state, saved with the run
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("ada", ada)
            self.register_buffer("pl_mean", pl_mean)

    buffers = _Buffers()
    progress = run_steps(
        step,
        total_steps=steps,
        state_path=out_dir / "anatomy-gan-state.pt",
        modules={
            "G": G,
            "D": D,
            "G_ema": G_ema,
            "opt_G": opt_G,
            "opt_D": opt_D,
            "buffers": buffers,
        },
        rng=rng,
        max_minutes=max_minutes,
        max_steps=max_steps,
        label=f"anatomy {config.architecture}",
        ranks=ranks,
    )
    G_ema.cpu()
    _update_w_avg(G_ema, data)
    return G_ema, progress


@torch.no_grad()
def _update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, batch: int, ema_kimg: float) -> None:
    beta = 0.5 ** (batch / max(ema_kimg * 1000, 1e-8))
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)


@torch.no_grad()
def _update_w_avg(G_ema: ConditionalGenerator, data: AnatomyData, n: int = 1024) -> None:
    """The unconditional mean w over the training conditions (diagnostics, and the centre
    NVIDIA-style tools expect)."""
    rows = np.arange(min(n, len(data.latents)))
    z = torch.randn(len(rows), G_ema.z_dim, generator=torch.Generator().manual_seed(1))
    w = G_ema.mapping_network(z, torch.from_numpy(data.conditions(rows)))
    G_ema.mapping_network.w_avg.copy_(w.mean(0))
