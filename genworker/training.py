"""Training a conditional generator on a cohort, resumable exactly, and exporting it.

One :func:`train` call runs until the requested length or until ``max_minutes`` is
spent (GPU time comes in 10-minute commands), then saves a training state in
``out_dir`` and exports the EMA generator. Calling it again with ``resume=True`` and
the same settings continues bit for bit where it stopped: the state holds both
networks, the EMA copy, both optimisers, the random states of torch, numpy and
Python, the images seen and the loss history.

Losses follow StyleGAN2: non-saturating logistic loss for both players, lazy R1 on
real images every ``R1_INTERVAL`` discriminator steps, an exponential moving average
(EMA) of the generator's weights for inference, and differentiable augmentation
(:mod:`genworker.augment`) in front of the discriminator. An optional lesion-burden term
(``lesion_weight``) holds the generated mask's size to that of the real image whose
conditions the generated image borrowed; an optional identity term (``identity_weight``)
holds a generated image fixed outside its lesion when only its severity changes; an
optional mode-seeking term (``mode_seeking_weight``) keeps the generator from ignoring z; an
optional monotone term (``monotone_weight``) keeps the lesion from shrinking as severity rises.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from genworker import metrics
from genworker.augment import augment
from genworker.checkpoint import load_training_state, save_generator, save_training_state
from genworker.cohorts import Cohort
from genworker.networks import GeneratorConfig, build_discriminator, build_generator
from genworker.sampling import fit_severity_direction

STATE_FILE = "training-state.pt"
EXPORT_FILE = "generator.pt"
SNAPSHOT_DIR = "snapshots"
R1_INTERVAL = 16  # lazy regularisation: R1 on every 16th discriminator step, scaled up
EMA_RAMPUP = 0.05  # early on, the EMA half-life is at most 5% of the images seen
W_AVG_BETA = 0.995
ADAM_BETAS = (0.0, 0.99)
HISTORY_KEYS = (
    "step", "kimg", "loss_G", "loss_D", "logit_real", "logit_fake", "r1", "lesion", "identity",
    "mode_seeking", "monotone",
)  # fmt: skip
MASK_SHARPNESS = 8.0  # soft mask = sigmoid(8 x): about 0 at -1, about 1 at +1
SMALLEST_LESION = 0.05  # of the cohort's mean lesion share: the monotone term's floor


@dataclass(frozen=True)
class TrainingOptions:
    """The settings a resumed run must share with the run it continues."""

    batch_size: int
    lr: float
    r1_gamma: float
    ema_kimg: float
    augment_p: float
    seed: int
    lesion_weight: float = 0.0
    identity_weight: float = 0.0
    mode_seeking_weight: float = 0.0
    monotone_weight: float = 0.0


@dataclass
class TrainResult:
    state_path: Path
    export_path: Path
    step: int
    images_seen: int
    finished: bool  # False when the time budget stopped the run first
    history: dict[str, list[float]]


@dataclass
class _Run:
    """Everything that changes while training, saved in the training state; and how a step
    calls the networks (``synthesis``, ``discriminate``), which is not saved."""

    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    rng: np.random.Generator  # batches and latents
    step: int = 0
    images_seen: int = 0
    seconds: float = 0.0
    devices: list[str] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    synthesis: Callable[..., torch.Tensor] = field(init=False, repr=False)
    discriminate: Callable[..., torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.synthesis, self.discriminate = self.G.synthesis_network, self.D

    def compile(self) -> None:
        """Compile the synthesis network and the discriminator for the steps that can use
        them: all but the discriminator's R1 steps, whose gradient of a gradient compiled
        graphs do not support. The modules, their parameters and the state are unchanged."""
        self.synthesis = torch.compile(self.G.synthesis_network)
        self.discriminate = torch.compile(self.D)


@dataclass
class _Data:
    images: torch.Tensor  # [N, img_channels, R, R] in [-1, 1]
    conds: torch.Tensor  # [N, cond_dim]
    lesion_share: torch.Tensor  # [N] soft share of lesion-mask pixels (zeros without a mask)
    lesion_scale: float  # 1 / the mean share over images with a lesion
    subject_distance: float  # mean |difference| of two training images of a finding; 0 unmeasured


def soft_lesion_share(images: torch.Tensor) -> torch.Tensor:
    """[N] the share of each image's mask channel (channel 1, in [-1, 1]) that is lesion."""
    return _soft_mask(images).mean(dim=(1, 2))


def diversity_shortfall(
    first: torch.Tensor,  # [n, ...]
    second: torch.Tensor,  # [n, ...], row i drawn with row i's conditions and another z
    subject_distance: float,  # > 0
) -> torch.Tensor:  # scalar in [0, 1]: 1 when identical, 0 from subject_distance on
    """relu(1 - mean |first - second| / subject_distance)."""
    return F.relu(1 - (first - second).abs().mean() / subject_distance)


def lesion_shrinkage(
    lower: torch.Tensor,  # [n] lesion share of each image at the lower severity
    higher: torch.Tensor,  # [n] lesion share of the same z at the higher severity
    floor: float,  # > 0: lesions smaller than this count as this large
) -> torch.Tensor:  # scalar in [0, 1]
    """Mean share of the lower severity's lesion lost at the higher, relu(lower - higher) /
    max(lower, floor); growth is free. Relative, so that a small stray lesion that gives way
    to a smaller tumour counts as much as a large one."""
    return (F.relu(lower - higher) / lower.detach().clamp(min=floor)).mean()


def default_r1_gamma(resolution: int, batch_size: int) -> float:
    """StyleGAN2-ADA's heuristic: gamma = 0.0002 * R^2 / batch."""
    return 0.0002 * resolution**2 / batch_size


def train(
    cohort: Cohort,
    *,
    config: GeneratorConfig,
    out_dir: str | Path,
    batch_size: int = 16,
    kimg: float | None = None,
    steps: int | None = None,
    lr: float = 0.0025,
    r1_gamma: float | None = None,  # None: default_r1_gamma(resolution, batch_size)
    ema_kimg: float = 5.0,
    augment_p: float = 0.5,
    lesion_weight: float = 0.0,  # see _train_step; needs a mask channel
    identity_weight: float = 0.0,  # see _identity_loss; needs a mask channel
    mode_seeking_weight: float = 0.0,  # see _mode_seeking_loss
    monotone_weight: float = 0.0,  # see _monotone_loss; needs a mask channel
    seed: int = 0,
    device: str | torch.device = "cpu",
    mixed_precision: bool | None = None,  # bf16 autocast; None: on a GPU only
    resume: bool = False,  # continue from out_dir's training state if there is one
    max_minutes: float | None = None,
    checkpoint_every: int = 500,  # steps between training-state saves
    snapshot_kimg: float | None = None,  # see below
    progress: bool = True,
    compiled: bool = False,  # torch.compile the networks for most steps (_Run.compile)
) -> TrainResult:
    """Train for ``kimg`` thousand images or ``steps`` steps in total (counting resumes).

    With ``snapshot_kimg``, the EMA generator is also kept every that many thousand images
    and where the call stops, in ``out_dir/snapshots``, each exportable like the training
    state, so that :mod:`genworker.selection` can pick the best point of a run that drifts.
    """
    _check_lengths(kimg, steps, snapshot_kimg)
    total_steps = steps if steps is not None else math.ceil(kimg * 1000 / batch_size)
    snapshot_steps = snapshot_kimg and max(1, round(snapshot_kimg * 1000 / batch_size))
    device = torch.device(device)
    if mixed_precision is None:
        mixed_precision = device.type == "cuda"
    out_dir = Path(out_dir)
    state_path = out_dir / STATE_FILE
    if state_path.exists() and not resume:
        raise FileExistsError(f"{state_path} exists: pass resume=True to continue it")
    options = TrainingOptions(
        batch_size=batch_size,
        lr=lr,
        r1_gamma=default_r1_gamma(config.resolution, batch_size) if r1_gamma is None else r1_gamma,
        ema_kimg=ema_kimg,
        augment_p=augment_p,
        seed=seed,
        lesion_weight=lesion_weight,
        identity_weight=identity_weight,
        mode_seeking_weight=mode_seeking_weight,
        monotone_weight=monotone_weight,
    )
    if (lesion_weight or identity_weight or monotone_weight) and config.img_channels != 2:
        raise ValueError(
            "lesion_weight, identity_weight and monotone_weight need a lesion-mask channel"
        )
    data = _training_data(cohort, config, device, subject_distance=bool(mode_seeking_weight))
    if mode_seeking_weight and not data.subject_distance:
        raise ValueError("mode_seeking_weight needs two different training images of a finding")
    cohort_card = _cohort_card(cohort, n_train=len(data.images))
    run = _open_run(state_path, config, options, cohort_card, device, compiled=compiled)
    run.devices = sorted({*run.devices, _device_name(device)})

    started = time.monotonic()
    stopped_early = False
    bar = tqdm(total=total_steps, initial=run.step, disable=not progress, unit="step")
    while run.step < total_steps:
        if max_minutes is not None and time.monotonic() - started > max_minutes * 60:
            stopped_early = True
            break
        losses = _train_step(run, data, options, device, mixed_precision)
        bar.update(1)
        bar.set_postfix(
            kimg=f"{run.images_seen / 1000:.1f}", **{k: f"{v:.3f}" for k, v in losses.items()}
        )
        if run.step % checkpoint_every == 0:
            save_training_state(state_path, _state(run, config, options, cohort_card, started))
        if snapshot_steps and run.step % snapshot_steps == 0 and run.step < total_steps:
            snapshot = _snapshot(_state(run, config, options, cohort_card, started), total_steps)
            save_training_state(snapshot_path(out_dir, run.step), snapshot)
    bar.close()
    run.seconds += time.monotonic() - started
    state = _state(run, config, options, cohort_card, started=None)
    state["finished"] = not stopped_early
    save_training_state(state_path, state)
    if snapshot_steps and run.step:  # where it stopped, finished or not, is a candidate too
        save_training_state(snapshot_path(out_dir, run.step), _snapshot(state, total_steps))
    export_path = out_dir / EXPORT_FILE
    export_generator(state_path, export_path)
    return TrainResult(
        state_path, export_path, run.step, run.images_seen, not stopped_early, run.history
    )


def _check_lengths(kimg: float | None, steps: int | None, snapshot_kimg: float | None) -> None:
    if (kimg is None) == (steps is None):
        raise ValueError("give exactly one of kimg and steps")
    if snapshot_kimg is not None and snapshot_kimg <= 0:
        raise ValueError(f"snapshot_kimg must be positive, not {snapshot_kimg}")


def snapshot_path(out_dir: str | Path, step: int) -> Path:
    return Path(out_dir) / SNAPSHOT_DIR / f"step-{step:07d}.pt"


def snapshots(out_dir: str | Path) -> list[Path]:
    """A run's snapshots, in training order."""
    return sorted((Path(out_dir) / SNAPSHOT_DIR).glob("step-*.pt"))


def export_generator(
    state_path: str | Path,
    out_path: str | Path,
    *,
    half: bool = False,
    direction_samples: int = 2000,
) -> str:
    """Export a training state's (or snapshot's) EMA generator with directions and model
    card; -> sha256."""
    state = load_training_state(state_path)
    config = GeneratorConfig.from_dict(state["config"])
    generator = build_generator(config)
    generator.load_state_dict(state["G_ema"])
    generator.eval().requires_grad_(False)
    cohort = state["cohort"]
    directions = {
        finding: fit_severity_direction(
            generator,
            finding,
            n_samples=direction_samples,
            seed=0,
            age_range=tuple(cohort["age_range"]),
        )
        for finding in cohort["findings_with_severity"]
    }
    return save_generator(
        out_path,
        generator,
        model_card=model_card(state, directions, half=half),
        directions=directions,
        half=half,
    )


def model_card(state: dict, directions: dict[str, np.ndarray], *, half: bool) -> dict:
    """The card shipped with an exported generator; ``metrics`` is filled by evaluation."""
    config = GeneratorConfig.from_dict(state["config"])
    cohort = state["cohort"]
    provenance = cohort["provenance"]
    return {
        "architecture": config.architecture,
        "modality": cohort["modality"],
        "config": config.to_dict(),
        "conditions": config.schema.to_dict(),
        "resolution": config.resolution,
        "channels": ["image", "lesion mask"][: config.img_channels],
        "cohort": {k: v for k, v in cohort.items() if k != "provenance"},
        "training": {
            **state["options"],
            "steps": state["step"],
            "images_seen": state["images_seen"],
            "kimg": state["images_seen"] / 1000,
            "seconds": round(state["seconds"], 1),
            "devices": state["devices"],
            "finished": state["finished"],
        },
        "weights": "ema, float16" if half else "ema, float32",
        "directions": {
            finding: {"method": "partial least squares in w", "scale": float(np.linalg.norm(v))}
            for finding, v in directions.items()
        },
        "licence": provenance.get("licence", "unknown"),
        "provenance": provenance,
        "metrics": {},
    }


# --------------------------------------------------------------------------------------


def _training_data(
    cohort: Cohort,
    config: GeneratorConfig,
    device: torch.device,
    *,
    subject_distance: bool,  # measure it (only the mode-seeking term uses it)
) -> _Data:
    """The cohort's training split as network tensors on ``device``."""
    if tuple(cohort.findings) != config.findings:
        raise ValueError(f"cohort findings {cohort.findings} differ from {config.findings}")
    if cohort.resolution != config.resolution:
        raise ValueError(f"cohort is {cohort.resolution}px, the generator {config.resolution}px")
    part = cohort.train()
    channels = [part.images.astype(np.float32) * 2 - 1]
    if config.img_channels == 2:
        channels.append(part.masks.astype(np.float32) * 2 - 1)
    images = torch.from_numpy(np.stack(channels, axis=1))  # [N, C, R, R]
    conds = config.schema.encode(part.finding, part.severity, part.age, part.sex)
    share = soft_lesion_share(images) if config.img_channels == 2 else torch.zeros(len(images))
    with_lesion = share[share > 1e-3]
    scale = 1.0 / float(with_lesion.mean()) if len(with_lesion) else 1.0
    return _Data(
        images.to(device),
        torch.from_numpy(conds).to(device),
        share.to(device),
        scale,
        (subject_distance and metrics.subject_distance(images.numpy(), part.finding)) or 0.0,
    )


def _cohort_card(cohort: Cohort, *, n_train: int) -> dict:
    train = cohort.train()
    with_severity = sorted({int(i) for i in train.finding[train.severity > 0]})
    return {
        "name": cohort.name,
        "seed": int(cohort.seed),
        "modality": cohort.modality,
        "findings": list(cohort.findings),
        "findings_with_severity": [cohort.findings[i] for i in with_severity],
        "n_train_images": n_train,
        "age_range": [float(train.age.min()), float(train.age.max())],
        "provenance": cohort.provenance,
    }


def _build(
    config: GeneratorConfig, options: TrainingOptions, device: torch.device
) -> tuple[nn.Module, nn.Module, nn.Module, torch.optim.Optimizer, torch.optim.Optimizer]:
    G = build_generator(config).to(device).train()
    D = build_discriminator(config).to(device).train()
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G = torch.optim.Adam(G.parameters(), lr=options.lr, betas=ADAM_BETAS, eps=1e-8)
    opt_D = torch.optim.Adam(D.parameters(), lr=options.lr, betas=ADAM_BETAS, eps=1e-8)
    return G, D, G_ema, opt_G, opt_D


def _open_run(
    state_path: Path,
    config: GeneratorConfig,
    options: TrainingOptions,
    cohort_card: dict,
    device: torch.device,
    *,
    compiled: bool,
) -> _Run:
    """The run saved at ``state_path``, or a new one; with ``compiled``, compiled."""
    if state_path.exists():
        run = _restore(load_training_state(state_path), config, options, cohort_card, device)
    else:
        run = _start(config, options, device)
    if compiled:
        run.compile()
    return run


def _start(config: GeneratorConfig, options: TrainingOptions, device: torch.device) -> _Run:
    random.seed(options.seed)
    torch.manual_seed(options.seed)  # seeds CUDA too
    return _Run(*_build(config, options, device), rng=np.random.default_rng(options.seed))


def _restore(
    state: dict,
    config: GeneratorConfig,
    options: TrainingOptions,
    cohort_card: dict,
    device: torch.device,
) -> _Run:
    expected = {"config": config.to_dict(), "options": asdict(options), "cohort": cohort_card}
    for key, value in expected.items():
        if state[key] != value:
            raise ValueError(
                f"cannot resume: the {key} differs from the saved run's\n"
                f"  saved: {state[key]}\n  now:   {value}"
            )
    run = _Run(*_build(config, options, device), rng=np.random.default_rng())
    for name in ("G", "D", "G_ema", "opt_G", "opt_D"):
        getattr(run, name).load_state_dict(state[name])
    run.rng.bit_generator.state = state["rng"]["numpy"]
    torch.set_rng_state(state["rng"]["torch"])
    if device.type == "cuda" and state["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    version, internal, gauss = state["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    for key in ("step", "images_seen", "seconds", "devices", "history"):
        setattr(run, key, state[key])
    return run


def _state(
    run: _Run,
    config: GeneratorConfig,
    options: TrainingOptions,
    cohort_card: dict,
    started: float | None,  # monotonic start of this call while it is still running
) -> dict:
    seconds = run.seconds + (time.monotonic() - started if started is not None else 0.0)
    on_cuda = next(run.G.parameters()).device
    return {
        "config": config.to_dict(),
        "options": asdict(options),
        "cohort": cohort_card,
        **{name: getattr(run, name).state_dict() for name in ("G", "D", "G_ema", "opt_G", "opt_D")},
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(on_cuda) if on_cuda.type == "cuda" else None,
            "numpy": run.rng.bit_generator.state,
            "python": random.getstate(),
        },
        "step": run.step,
        "images_seen": run.images_seen,
        "seconds": seconds,
        "devices": run.devices,
        "history": run.history,
        "finished": False,
    }


def _snapshot(state: dict, total_steps: int) -> dict:
    """A training state without what only resuming needs: what export_generator reads."""
    kept = ("config", "options", "cohort", "G_ema", "step", "images_seen", "seconds", "devices")
    return {**{key: state[key] for key in kept}, "finished": state["step"] == total_steps}


def _train_step(
    run: _Run, data: _Data, options: TrainingOptions, device: torch.device, amp: bool
) -> dict[str, float]:
    """One generator step and one discriminator step on a batch, in bf16 autocast with
    ``amp``; returns the losses."""
    G, D = run.G, run.D
    n = options.batch_size
    real_rows = torch.from_numpy(run.rng.integers(0, len(data.images), n)).to(device)
    fake_rows = torch.from_numpy(run.rng.integers(0, len(data.images), n)).to(device)
    z = torch.from_numpy(run.rng.standard_normal((n, G.z_dim), dtype=np.float32)).to(device)
    real, real_cond = data.images[real_rows], data.conds[real_rows]  # [n, C, R, R], [n, c]
    fake_cond = data.conds[fake_rows]  # generated images take conditions seen in the cohort

    # Generator: make the discriminator call generated images real.
    G.requires_grad_(True)
    D.requires_grad_(False)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        ws = G.mapping(z, fake_cond)  # [n, num_ws, w_dim]
        fake = run.synthesis(ws, "random")  # [n, C, R, R]
        logit_fake = run.discriminate(augment(fake, options.augment_p), fake_cond).float()
    loss_G = F.softplus(-logit_fake).mean()
    # Lesion burden: each generated image borrowed the conditions of a real one, so its mask
    # should cover as much as that image's. This ties the severity condition to the lesion
    # from the first steps, where the adversarial signal alone is slow to (the 12-kimg CPU
    # chest model drew no nodule at any severity without it; see genworker.recipes).
    lesion = torch.tensor(float("nan"))
    if options.lesion_weight:
        target = data.lesion_share[fake_rows]
        lesion = (soft_lesion_share(fake) - target).abs().mean() * data.lesion_scale
    total_G = loss_G + options.lesion_weight * lesion if options.lesion_weight else loss_G
    identity = monotone = torch.tensor(float("nan"))
    if options.identity_weight or options.monotone_weight:
        pair = _severity_pair(run, z, fake_cond, data, amp)
        nothing = torch.zeros((), device=device)  # a batch without a progressive row
        if options.identity_weight:
            identity = _identity_loss(pair) if pair is not None else nothing
            total_G = total_G + options.identity_weight * identity
        if options.monotone_weight:
            monotone = _monotone_loss(pair, data) if pair is not None else nothing
            total_G = total_G + options.monotone_weight * monotone
    mode_seeking = torch.tensor(float("nan"))
    if options.mode_seeking_weight:
        mode_seeking = _mode_seeking_loss(run, z, fake, fake_cond, data, amp)
        total_G = total_G + options.mode_seeking_weight * mode_seeking
    run.opt_G.zero_grad(set_to_none=True)
    total_G.backward()
    run.opt_G.step()
    with torch.no_grad():
        w_avg = G.mapping_network.w_avg
        w_avg.copy_(ws[:, 0].float().mean(dim=0).lerp(w_avg, W_AVG_BETA))

    # Discriminator: real high, generated low; R1 penalty on real images every R1_INTERVAL.
    G.requires_grad_(False)
    D.requires_grad_(True)
    do_r1 = options.r1_gamma > 0 and run.step % R1_INTERVAL == 0
    real = real.detach().requires_grad_(do_r1)
    discriminate = D if do_r1 else run.discriminate
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and not do_r1):
        logit_real = discriminate(augment(real, options.augment_p), real_cond).float()
        # fp32 like the real batch: fake is bf16 under amp, and the R1 steps run without it
        fake = fake.detach().float()
        logit_fake = discriminate(augment(fake, options.augment_p), fake_cond).float()
    loss_D = F.softplus(logit_fake).mean() + F.softplus(-logit_real).mean()
    r1 = torch.tensor(float("nan"))
    if do_r1:
        (grad,) = torch.autograd.grad(logit_real.sum(), real, create_graph=True)
        r1 = grad.square().sum(dim=[1, 2, 3]).mean()
        loss_D = loss_D + r1 * (options.r1_gamma / 2) * R1_INTERVAL
    run.opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    run.opt_D.step()

    run.step += 1
    run.images_seen += n
    _update_ema(run, options)
    losses = {
        "loss_G": loss_G.item(),
        "loss_D": loss_D.item(),
        "r1": r1.item(),
        "lesion": lesion.item(),
        "identity": identity.item(),
        "mode_seeking": mode_seeking.item(),
        "monotone": monotone.item(),
    }
    record = {
        "step": run.step,
        "kimg": run.images_seen / 1000,
        "logit_real": logit_real.mean().item(),
        "logit_fake": logit_fake.mean().item(),
        **losses,
    }
    for key in HISTORY_KEYS:
        run.history[key].append(record[key])
    return {k: v for k, v in losses.items() if not math.isnan(v)}


@dataclass
class _SeverityPair:
    """Generated images of the same z, finding and noise at two severities."""

    first: torch.Tensor  # [n, C, R, R]
    moved: torch.Tensor  # [n, C, R, R]
    rising: torch.Tensor  # [n] bool: moved has the higher severity


def _severity_pair(
    run: _Run, z: torch.Tensor, cond: torch.Tensor, data: _Data, amp: bool
) -> _SeverityPair | None:
    """Each progressive row of the batch drawn again at a random severity, as a series is
    drawn (same z, constant noise inputs); None when no row has a severity above 0."""
    severity_column = data.conds.shape[1] - 3  # [one-hot finding | severity | age | sex]
    progressive = cond[:, severity_column] > 0
    if not progressive.any():
        return None
    other = cond[progressive].clone()
    draws = run.rng.uniform(0.05, 1.0, int(progressive.sum())).astype(np.float32)
    other[:, severity_column] = torch.from_numpy(draws).to(cond.device)
    z_twice = z[progressive].repeat(2, 1)
    G = run.G
    with torch.autocast(z.device.type, dtype=torch.bfloat16, enabled=amp):
        images = run.synthesis(G.mapping(z_twice, torch.cat([cond[progressive], other])), "const")
    first, moved = images.chunk(2)
    rising = other[:, severity_column] > cond[progressive][:, severity_column]
    return _SeverityPair(first, moved, rising)


def _identity_loss(pair: _SeverityPair) -> torch.Tensor:
    """Mean absolute change of the image outside both lesion masks between the pair's two
    severities.

    The adversarial loss judges each image alone, so nothing in it says that one
    subject's anatomy should stay put while a lesion grows: a small generator learns
    severity as a change of the whole head. A progression series needs exactly that
    invariance. Rows at severity 0 (every normal one) are left out.
    """
    outside = 1 - torch.maximum(_soft_mask(pair.first), _soft_mask(pair.moved)).detach()
    change = (pair.first[:, 0].float() - pair.moved[:, 0].float()).abs()
    return (change * outside).sum() / outside.sum().clamp(min=1.0)


def _monotone_loss(pair: _SeverityPair, data: _Data) -> torch.Tensor:
    """The share of the pair's lesion mask lost from the lower to the higher severity
    (lesions under 5% of the cohort's mean lesion count as that large).

    The lesion-burden term holds each image's mask to a real image's, one image at a time;
    it does not stop one z from drawing a stray small lesion at a low severity and a tumour
    elsewhere at the next. The 48-kimg CPU brain cGAN did that: a quarter of its series'
    masks shrank at some step, most at the first. Measured in units of the mean lesion
    instead, that shrinkage was too small to matter (the term averaged 0.001 over the
    first 24 kimg of a run), hence the relative measure. Unproven: retrained without it on
    one machine, the same recipe's masks were as monotone as with it (README).
    """
    first, moved = soft_lesion_share(pair.first), soft_lesion_share(pair.moved)
    lower = torch.where(pair.rising, first, moved)
    higher = torch.where(pair.rising, moved, first)
    return lesion_shrinkage(lower, higher, floor=SMALLEST_LESION / data.lesion_scale)


def _mode_seeking_loss(
    run: _Run, z: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor, data: _Data, amp: bool
) -> torch.Tensor:
    """How far short of two real subjects' distance the batch falls from a second batch
    drawn with the same conditions and fresh z: relu(1 - distance / subject distance).

    A conditional generator can satisfy its discriminator while ignoring z, since the
    condition alone picks a plausible image: two images of the 24-kimg CPU cGANs with the
    same conditions and different z differed a quarter as much as two subjects of the
    cohort with the same finding (evaluation's "z_spread" ratio 0.24 brain, 0.23 chest),
    and their sample grids showed one head or chest per condition. Mao et al.'s
    mode-seeking term (MSGAN, 2019) rewards distance between images of different z without
    limit; on the chest cohort that drew wild, unanatomical images by 8 kimg, so here the
    reward stops at the distance between two real subjects of the same finding. It costs
    one more generator pass. Both batches draw random noise inputs, so in a StyleGAN2 a
    little of the distance comes from the noise, not from z.
    """
    other_z = torch.from_numpy(run.rng.standard_normal(z.shape, dtype=np.float32)).to(z.device)
    G = run.G
    with torch.autocast(z.device.type, dtype=torch.bfloat16, enabled=amp):
        other = run.synthesis(G.mapping(other_z, cond), "random")
    return diversity_shortfall(fake.float(), other.float(), data.subject_distance)


def _soft_mask(images: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(MASK_SHARPNESS * images[:, 1].float())


@torch.no_grad()
def _update_ema(run: _Run, options: TrainingOptions) -> None:
    half_life = min(options.ema_kimg * 1000, run.images_seen * EMA_RAMPUP)
    beta = 0.5 ** (options.batch_size / max(half_life, 1e-8))
    for p_ema, p in zip(run.G_ema.parameters(), run.G.parameters(), strict=True):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(run.G_ema.buffers(), run.G.buffers(), strict=True):
        b_ema.copy_(b)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return "cpu"
