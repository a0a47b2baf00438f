"""Grids of generated cases for people to look at: rows patients, columns severity, the
planned lesion outlined in red."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from genworker.latent.model import CaseRejected, LatentModel
from genworker.networks import z_from_seed

GRID_AGE = 55.0
CANDIDATES_PER_PATIENT = 16  # patients drawn per row at most: a chest nodule of severity 0.25
# passes the image check in about one series of eight


@dataclass
class Grid:
    images: np.ndarray  # float32 [P, T, C, R, R]
    masks: np.ndarray  # bool [P, T, R, R]
    candidates: int  # patients drawn to fill the rows; the others' cases were rejected

    def channel(self, c: int) -> np.ndarray:
        """uint8 RGB [P * R, T * R, 3] of one channel with lesion outlines."""
        p, t, _, r, _ = self.images.shape
        grey = np.clip(self.images[:, :, c], 0, 1)
        rgb = np.repeat(grey[..., None], 3, axis=-1)
        edges = self.masks & ~ndimage.binary_erosion(self.masks, structure=np.ones((1, 1, 3, 3)))
        rgb[edges] = (1.0, 0.15, 0.15)
        tiled = rgb.transpose(0, 2, 1, 3, 4).reshape(p * r, t * r, 3)
        return (tiled * 255).round().astype(np.uint8)


def case_grid(
    model: LatentModel, finding: str, severities: tuple[float, ...], *, patients: int, seed: int
) -> Grid:
    """``patients`` series of ``finding`` at ``severities`` (rejected cases are skipped and
    another patient drawn in their place, up to ``CANDIDATES_PER_PATIENT`` per row; fewer
    rows where too few pass, CaseRejected where none does)."""
    images, masks = [], []
    candidate = 0
    while len(images) < patients and candidate < CANDIDATES_PER_PATIENT * patients:
        z = z_from_seed(seed * 1000 + candidate, 1, model.z_dim)[0]
        sex = "F" if candidate % 2 else "M"
        try:
            series = model.series(
                z,
                age=GRID_AGE,
                sex=sex,
                finding=finding,
                severities=list(severities) if finding != "normal" else [0.0] * len(severities),
                seed=seed * 1000 + candidate,
            )
        except CaseRejected:
            candidate += 1
            continue
        images.append(series.images)
        masks.append(series.masks)
        candidate += 1
    if not images:
        raise CaseRejected(f"none of {candidate} patients drawn made a {finding} series")
    return Grid(np.stack(images), np.stack(masks), candidate)


def save_png(pixels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
