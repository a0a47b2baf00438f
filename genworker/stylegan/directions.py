"""Directions in w taught from an educator's labels, for unconditional imported models.

An unconditional model has no class to walk toward, so its finding is taught: the educator
labels samples drawn at fixed seeds as showing the finding or not, and the direction is the
normal of a linear classifier on their w (InterFaceGAN). The classifier is ridge-regularised
least squares on the labels as -1/+1 (numpy alone: a worker needs nothing beyond torch). Its
normal is scaled so that severity 1 moves w by the gap between the two groups' mean w along
it, as a class-conditional model's severity 1 reaches the disease class's mean offset.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from genworker.networks import z_from_seed
from genworker.sampling import SeriesSpec
from genworker.stylegan.model import ImportedStyleGAN, to_pictures

SAMPLE_SEEDS = tuple(range(48))  # the samples an educator labels
PREVIEW_SEED = 2026  # the identity the preview series walks
PREVIEW_SEVERITIES = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_PER_LABEL = 5  # samples needed on each side of the classifier
RIDGE = 0.1  # times the mean variance of w per sample: steadies a fit on few samples


@dataclass(frozen=True)
class TaughtDirection:
    vector: np.ndarray  # float32 [w_dim], the w shift of severity 1
    training_accuracy: float  # share of the labelled samples the classifier puts right
    positives: int
    negatives: int


def sample_z(seed: int, z_dim: int) -> np.ndarray:  # float32 [z_dim]
    return z_from_seed(seed, 1, z_dim)[0]


@torch.no_grad()
def sample_ws(model: ImportedStyleGAN, seeds: Sequence[int]) -> np.ndarray:  # [n, w_dim]
    """The untruncated w of each seed's z: what a series starts from."""
    g = model.generator
    z = torch.from_numpy(np.stack([sample_z(seed, g.z_dim) for seed in seeds])).to(g.device)
    return g.mapping(z, torch.zeros(len(seeds), 0, device=g.device))[:, 0].float().cpu().numpy()


@torch.no_grad()
def sample_pictures(model: ImportedStyleGAN, seeds: Sequence[int]) -> np.ndarray:  # [n, R, R]
    """The picture of each seed's untruncated sample, in [0, 1]."""
    g = model.generator
    ws = torch.from_numpy(sample_ws(model, seeds)).to(g.device)
    ws = ws[:, None, :].repeat(1, g.num_ws, 1)
    return np.concatenate(
        [
            to_pictures(g.synthesis(ws[start : start + model.max_batch]))
            for start in range(0, len(ws), model.max_batch)
        ]
    )


def fit_direction(ws: np.ndarray, labels: Sequence[bool]) -> TaughtDirection:
    """The direction in w that separates the samples labelled True from the others."""
    ws = np.asarray(ws, np.float64)
    y = np.where(np.asarray(labels, bool), 1.0, -1.0)
    if ws.ndim != 2 or len(ws) != len(y):
        raise ValueError(f"{len(y)} labels for w of shape {list(ws.shape)}")
    positives, negatives = int((y > 0).sum()), int((y < 0).sum())
    if min(positives, negatives) < MIN_PER_LABEL:
        raise ValueError(
            f"label at least {MIN_PER_LABEL} samples each way (shows the finding: {positives}, "
            f"does not: {negatives})"
        )
    centred = ws - ws.mean(axis=0)
    ridge = RIDGE * max(float(centred.var(axis=0).mean()), 1e-12) * len(ws)
    gram = centred.T @ centred + ridge * np.eye(ws.shape[1])
    normal = np.linalg.solve(gram, centred.T @ (y - y.mean()))
    normal /= np.linalg.norm(normal)
    gap = float((ws[y > 0].mean(axis=0) - ws[y < 0].mean(axis=0)) @ normal)
    if gap <= 0:
        raise ValueError("the labelled groups do not separate along any direction in w")
    scores = centred @ normal
    threshold = (scores[y > 0].mean() + scores[y < 0].mean()) / 2
    accuracy = float(((scores > threshold) == (y > 0)).mean())
    return TaughtDirection(
        vector=(normal * gap).astype(np.float32),
        training_accuracy=accuracy,
        positives=positives,
        negatives=negatives,
    )


def with_directions(model: ImportedStyleGAN, taught: Mapping[str, Sequence[float]]):
    """``model`` with ``taught`` directions added (a copy: a cached model stays as loaded)."""
    if not taught:
        return model
    w_dim = model.generator.w_dim
    vectors = {finding: np.asarray(v, np.float32) for finding, v in taught.items()}
    for finding, vector in vectors.items():
        if vector.shape != (w_dim,):
            raise ValueError(f"the direction of {finding!r} has {vector.size} values, not {w_dim}")
    return replace(model, directions={**model.directions, **vectors})


def preview_series(
    model: ImportedStyleGAN, vector: Sequence[float], seed: int = PREVIEW_SEED
) -> np.ndarray:  # [5, R, R] pictures in [0, 1]
    """One identity walked along ``vector`` over PREVIEW_SEVERITIES."""
    walked = with_directions(model, {"preview": vector})
    spec = SeriesSpec(
        z=sample_z(seed, model.z_dim),
        finding="preview",
        severities=PREVIEW_SEVERITIES,
        age=50.0,
        sex="F",
        method="direction",
    )
    return walked.progression_batch([spec])[0].images


def png_bytes(picture: np.ndarray) -> bytes:
    """A [R, R] picture in [0, 1] as an 8-bit greyscale PNG."""
    buffer = io.BytesIO()
    pixels = (np.clip(picture, 0, 1) * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def strip_png(pictures: np.ndarray) -> bytes:
    """Pictures side by side, one PNG, 2 pixels of black between them."""
    n, r, _ = pictures.shape
    strip = np.zeros((r, n * r + (n - 1) * 2), np.float32)
    for i, picture in enumerate(pictures):
        strip[:, i * (r + 2) : i * (r + 2) + r] = picture
    return png_bytes(strip)
