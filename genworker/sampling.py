"""Progression series, severity directions in w, and sample grids.

A progression series holds one identity (one z) fixed and sweeps severity over T
timepoints, in one of two ways:

- ``"condition"``: move the generator's continuous severity condition, z fixed;
- ``"direction"``: map z once at the first severity, then walk w along the finding's
  severity direction (InterFaceGAN-style), stored in the checkpoint by
  :func:`fit_severity_direction`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genworker.checkpoint import LoadedGenerator
from genworker.networks import ConditionalGenerator, z_from_seed

PROGRESSION_METHODS = ("condition", "direction")
BATCH = 64  # images per generator call when many are needed

# A scorer predicts severity in [0, 1] from pictures float32 [n, R, R] in [0, 1].
SeverityScorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class Series:
    """One identity at T severities."""

    images: np.ndarray  # float32 [T, R, R] in [0, 1] (the first channel, where there are more)
    masks: np.ndarray | None  # bool [T, R, R]; None for image-only generators
    w: np.ndarray  # float32 [T, w_dim], the w each image was made from (first ws row)
    severities: np.ndarray  # float32 [T]
    # Multi-channel generators (e.g. MRI contrasts): every channel's name, and the images of
    # the channels after the first, float32 [T, C - 1, R, R].
    channels: tuple[str, ...] = ()
    more_channels: np.ndarray | None = None
    lesions: list[dict] = field(default_factory=list)  # per timepoint: facts of its mask
    z: np.ndarray | None = None  # the identity used, where the generator had to draw another
    attempts: int = 1  # lesion plans tried before one passed the generator's own check


@dataclass(frozen=True)
class SeriesSpec:
    """What one progression series needs: an identity and the severities to sweep."""

    z: np.ndarray  # float32 [z_dim], the identity
    finding: str
    severities: Sequence[float]
    age: float
    sex: str
    truncation: float = 1.0
    method: str = "condition"
    seed: int = 0  # the case's seed: latent models plan its lesion from it
    side: str | None = None  # where the lesion goes (latent models; None: at random)
    location: str | None = None


def progression_series(
    loaded: LoadedGenerator,
    *,
    z: np.ndarray,  # float32 [z_dim], the identity
    finding: str,
    severities: Sequence[float],
    age: float,
    sex: str,
    truncation: float = 1.0,
    method: str = "condition",
) -> Series:
    spec = SeriesSpec(z, finding, severities, age, sex, truncation, method)
    return progression_batch(loaded, [spec])[0]


def progression_batch(loaded: LoadedGenerator, specs: Sequence[SeriesSpec]) -> list[Series]:
    """Many series at once: their images go through the synthesis network together, at most
    ``loaded.max_batch`` per call (halved for good on running out of GPU memory, see
    :func:`synthesize`).

    Each image depends only on its own w; the batch layout changes pixels by float
    rounding alone (at most 1 grey level in 4095 on the shipped models).
    """
    if not isinstance(loaded, LoadedGenerator):  # a latent model makes its series itself
        return loaded.progression_batch(specs)
    with torch.no_grad():
        ws = _series_ws(loaded, specs)  # each [T, num_ws, w_dim]
        every_w = torch.cat(ws)
        out, loaded.max_batch = synthesize(loaded.synthesis, every_w, max_batch=loaded.max_batch)
    images, masks = to_pictures(out)
    first_ws = every_w[:, 0].float().cpu().numpy()  # one copy off the device, not one a series
    series, start = [], 0
    for spec, w in zip(specs, ws, strict=True):
        rows = slice(start, start + len(w))
        start += len(w)
        series.append(
            Series(
                images[rows],
                None if masks is None else masks[rows],
                first_ws[rows],
                np.asarray(spec.severities, dtype=np.float32),
            )
        )
    return series


def synthesize(
    synthesis: Callable[[torch.Tensor], torch.Tensor], ws: torch.Tensor, *, max_batch: int
) -> tuple[torch.Tensor, int]:  # ([n, C, R, R] on the CPU, the batch size that fitted)
    """``synthesis`` (a generator's) over ws [n, num_ws, w_dim] in slices of at most
    ``max_batch``.

    A slice that runs out of GPU memory is retried at half the size (down to 1) instead of
    failing; the size that worked is returned so the caller can start there next time.
    """
    parts, start = [], 0
    while start < len(ws):
        try:
            parts.append(synthesis(ws[start : start + max_batch]).cpu())
        except torch.OutOfMemoryError:
            if max_batch == 1:
                raise
            max_batch //= 2
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        start += max_batch
    return torch.cat(parts), max_batch


def _series_ws(loaded: LoadedGenerator, specs: Sequence[SeriesSpec]) -> list[torch.Tensor]:
    """The w of each timepoint of each series, [T, num_ws, w_dim] per series.

    One mapping call per truncation value for the whole batch, not one per series: on a GPU
    a series' mapping is a few tiny kernels, and launching them (and, under truncation, the
    per-condition mean w) series by series cost more than the synthesis of its images.
    """
    generator = loaded.generator
    # What goes through the mapping network: every timepoint of a "condition" series, the
    # first timepoint of a "direction" series (the rest walk from it).
    z_rows, conds = [], []
    for spec in specs:
        if np.shape(spec.z) != (generator.z_dim,):
            raise ValueError(f"z must have shape [{generator.z_dim}], got {list(np.shape(spec.z))}")
        if spec.method not in PROGRESSION_METHODS:
            raise ValueError(f"method must be one of {PROGRESSION_METHODS}")
        if spec.method == "direction" and spec.finding not in loaded.directions:
            raise KeyError(f"the checkpoint has no severity direction for {spec.finding!r}")
        severity = np.asarray(spec.severities, dtype=np.float32)
        mapped = severity if spec.method == "condition" else severity[:1]
        z_rows.append(np.repeat(np.asarray(spec.z, np.float32)[None], len(mapped), 0))
        conds.append(generator.schema.encode(spec.finding, mapped, spec.age, spec.sex))
    mapped_ws: list[torch.Tensor] = [torch.empty(0)] * len(specs)
    for truncation in dict.fromkeys(spec.truncation for spec in specs):
        members = [i for i, spec in enumerate(specs) if spec.truncation == truncation]
        z = torch.from_numpy(np.concatenate([z_rows[i] for i in members]))
        cond = torch.from_numpy(np.concatenate([conds[i] for i in members]))
        w = generator.mapping(z.to(generator.device), cond.to(generator.device), truncation)
        for i, part in zip(members, w.split([len(z_rows[i]) for i in members]), strict=True):
            mapped_ws[i] = part
    return [
        mapped_ws[i] if spec.method == "condition" else _walk(loaded, spec, mapped_ws[i])
        for i, spec in enumerate(specs)
    ]


def _walk(loaded: LoadedGenerator, spec: SeriesSpec, w0: torch.Tensor) -> torch.Tensor:
    """From w0 [1, num_ws, w_dim] along the finding's severity direction: [T, num_ws, w_dim]."""
    device = loaded.generator.device
    direction = torch.from_numpy(loaded.directions[spec.finding]).to(device)
    severity = np.asarray(spec.severities, dtype=np.float32)
    steps = torch.from_numpy(severity - severity[0]).to(device)  # [T]
    return w0 + steps[:, None, None] * direction[None, None, :]


def to_pictures(
    out: torch.Tensor,  # [n, img_channels, R, R] in [-1, 1]
) -> tuple[np.ndarray, np.ndarray | None]:  # float32 [n, R, R] in [0, 1], bool [n, R, R]
    """Generator output as display pictures and, for two-channel models, lesion masks."""
    images = ((out[:, 0].float() + 1) / 2).clamp(0, 1).cpu().numpy()
    masks = (out[:, 1] > 0).cpu().numpy() if out.shape[1] == 2 else None
    return images, masks


def fit_severity_direction(
    generator: ConditionalGenerator | LoadedGenerator,
    finding: str,
    *,
    n_samples: int = 2000,
    seed: int = 0,
    age_range: tuple[float, float] = (20.0, 80.0),
    scorer: SeverityScorer | None = None,
) -> np.ndarray:  # float32 [w_dim]
    """The w shift per unit severity of ``finding``, InterFaceGAN-style.

    Samples w for random identities, severities, ages and sexes and labels each with the
    severity it was conditioned on (or, given ``scorer``, the severity the scorer reads
    from its image). The boundary normal n is the first partial-least-squares direction,
    the covariance of w with the label: the least-squares normal in the limit of strong
    ridge regularisation. Plain least squares whitens w first and picks low-variance
    directions the synthesis network hardly responds to (on the toy cohort of the tests
    the lesion grew 30 times less along it). The calibration ``scale`` is the slope of
    ``n . w`` against the label: how far along n one unit of severity lies.

    Returns ``n * scale``: a series moves by ``(s - s0) * direction``, and the norm of
    the result is the calibration scale.
    """
    if isinstance(generator, LoadedGenerator):
        generator = generator.generator
    rng = np.random.default_rng(seed)
    severity = rng.uniform(0.0, 1.0, n_samples).astype(np.float32)
    age = rng.uniform(*age_range, n_samples).astype(np.float32)
    sex = rng.integers(0, 2, n_samples)
    cond = torch.from_numpy(generator.schema.encode(finding, severity, age, sex))
    z = torch.from_numpy(z_from_seed(seed, n_samples, generator.z_dim))
    w_parts, score_parts = [], []
    with torch.no_grad():
        for start in range(0, n_samples, BATCH):
            rows = slice(start, start + BATCH)
            ws = generator.mapping(z[rows].to(generator.device), cond[rows].to(generator.device))
            w_parts.append(ws[:, 0].double().cpu().numpy())
            if scorer is not None:
                score_parts.append(np.asarray(scorer(to_pictures(generator.synthesis(ws))[0])))
    w = np.concatenate(w_parts)  # [n, w_dim]
    labels = (
        np.concatenate(score_parts).astype(np.float64)
        if scorer is not None
        else severity.astype(np.float64)
    )
    centred_w = w - w.mean(axis=0)
    centred_labels = labels - labels.mean()
    covariance = centred_w.T @ centred_labels  # [w_dim]
    normal = covariance / np.linalg.norm(covariance)
    along = centred_w @ normal  # [n]
    scale = float(along @ centred_labels / (centred_labels @ centred_labels))
    return (normal * scale).astype(np.float32)


def sample_grid(
    loaded: LoadedGenerator,
    finding: str,
    *,
    n_identities: int,
    severities: Sequence[float],
    seed: int,
    age: float = 50.0,
    sex: str = "F",
    truncation: float = 1.0,
    method: str = "condition",
) -> np.ndarray:  # float32 [n_identities, T, R, R] in [0, 1]
    """Rows are identities (z_from_seed(seed, n_identities)), columns severities."""
    z = z_from_seed(seed, n_identities, loaded.generator.z_dim)
    specs = [
        SeriesSpec(z[i], finding, severities, age, sex, truncation, method)
        for i in range(n_identities)
    ]
    return np.stack([series.images for series in progression_batch(loaded, specs)])


def save_grid_png(
    grid: np.ndarray,  # float32 [rows, cols, R, R] in [0, 1]
    path: str | Path,
    *,
    padding: int = 2,
) -> Path:
    """Tile the grid into one greyscale PNG with ``padding`` black pixels between tiles."""
    rows, cols, height, width = grid.shape
    canvas = np.zeros(
        (rows * (height + padding) + padding, cols * (width + padding) + padding), np.uint8
    )
    tiles = np.rint(np.clip(grid, 0, 1) * 255).astype(np.uint8)
    for r in range(rows):
        for c in range(cols):
            top, left = padding + r * (height + padding), padding + c * (width + padding)
            canvas[top : top + height, left : left + width] = tiles[r, c]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
    return path
