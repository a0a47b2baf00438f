"""Samples to label and preview series, for directions taught to unconditional imported
models (the fit itself: :mod:`genworker.stylegan.direction_fit`)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from genworker.networks import z_from_seed
from genworker.sampling import SeriesSpec
from genworker.stylegan.direction_fit import PREVIEW_SEVERITIES
from genworker.stylegan.model import ImportedStyleGAN, to_pictures

PREVIEW_SEED = 2026  # the identity the preview series walks


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
