"""The glioma model: where a tumour starts, how it grows, and what it looks like inside.

Pure numpy on tissue maps, so that the simulator (on a subject's real anatomy) and the
sampler (on a generated patient's anatomy) grow tumours the same way.

Growth follows the Fisher-Kolmogorov reaction-diffusion model

    du/dt = div(D(x) grad u) + rho * tissue(x) * u (1 - u),

with D larger in white than in grey matter and zero in CSF, seeded in white matter of the
requested hemisphere and lobe. Burden (the severity) is the area of {u > 0.5} divided by
``MAX_TUMOUR_AREA_MM2``. The recorded density is the running maximum of u, so a tumour
never shrinks between timepoints.

Compartments (Kickingereder, BraTS conventions): the gross tumour {u > 0.5} is the lesion
mask; inside it a necrotic core appears as the tumour grows, ringed by enhancing tumour;
vasogenic oedema spreads beyond it through white matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from genworker.cohorts.anatomy import blur, largest_piece

GROWTH_GRID = 128  # the model runs on a 128² grid of the field of view
MAX_TUMOUR_AREA_MM2 = 2000.0  # severity 1: a disc of about 25 mm radius
MAX_GROWTH_STEPS = 1500
SEED_DEPTH_MM = 20.0  # a seed lies this deep inside the brain, so the tumour can grow
SEED_CSF_MM = 3.0  # and at least this far from CSF (ventricles, sulci)
SIDES = ("right", "left")  # the patient's
LOCATIONS = ("frontal", "temporoparietal", "occipital")


@dataclass(frozen=True)
class Compartments:
    """One timepoint's tumour on the image grid, each float32 [R, R] in [0, 1]."""

    tumour: np.ndarray  # gross tumour density (mask = tumour > 0.5)
    necrosis: np.ndarray
    enhancing: np.ndarray
    oedema: np.ndarray
    texture: np.ndarray  # [-1, 1] how the signal varies inside the tumour


def brain_axes(brain: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Midline column and the (first, last) rows of a brain mask [R, R], read from its
    largest connected piece: a generated patient's decoded anatomy maps can carry a stray
    pixel at the image's corner, which would otherwise stretch the brain's extent to the
    border and move every lobe boundary with it."""
    brain = largest_piece(brain)
    rows = np.flatnonzero(brain.any(axis=1))
    midline = float(np.average(np.arange(brain.shape[1]), weights=brain.sum(axis=0) + 1e-6))
    if len(rows) == 0:
        return brain.shape[1] / 2, (0.0, float(brain.shape[0] - 1))
    return midline, (float(rows[0]), float(rows[-1]))


def side_of(column: float, midline: float) -> str:
    """Columns run from the patient's right (column 0) to the patient's left."""
    return "right" if column < midline else "left"


def location_of(row: float, extent: tuple[float, float]) -> str:
    """Rows run anterior to posterior: front 40% frontal, back 25% occipital."""
    fraction = (row - extent[0]) / max(extent[1] - extent[0], 1.0)
    if fraction < 0.4:
        return "frontal"
    return "temporoparietal" if fraction < 0.75 else "occipital"


def seed_point(
    wm: np.ndarray,  # [G, G] white-matter share on the growth grid
    gm: np.ndarray,  # [G, G]
    pixel_mm: float,
    rng: np.random.Generator,
    *,
    side: str,
    location: str,
    depth: float = SEED_DEPTH_MM,
) -> tuple[int, int] | None:
    """A white-matter pixel at least ``depth`` mm inside the brain, in the requested
    hemisphere and lobe; None if the anatomy has no such pixel."""
    parenchyma = (wm + gm) > 0.3
    brain = ndimage.binary_fill_holes(parenchyma)  # ventricles included
    depth_mm = ndimage.distance_transform_edt(brain) * pixel_mm
    from_csf_mm = ndimage.distance_transform_edt(parenchyma) * pixel_mm
    midline, extent = brain_axes(brain)
    rows, cols = np.nonzero((wm > 0.55) & (depth_mm > depth) & (from_csf_mm > SEED_CSF_MM))
    keep = np.array(
        [
            side_of(c, midline) == side and location_of(r, extent) == location
            for r, c in zip(rows, cols, strict=True)
        ],
        dtype=bool,
    )
    if not keep.any():
        return None
    pick = rng.integers(int(keep.sum()))
    return int(rows[keep][pick]), int(cols[keep][pick])


def _face_diffusivity(d: np.ndarray, axis: int) -> np.ndarray:
    """Harmonic mean of D across each face between neighbours along ``axis`` (0 next to CSF)."""
    a = np.take(d, np.arange(d.shape[axis] - 1), axis=axis)
    b = np.take(d, np.arange(1, d.shape[axis]), axis=axis)
    return 2 * a * b / np.maximum(a + b, 1e-8)


def _burden(record: np.ndarray, pixel_mm: float) -> float:
    return min(float((record > 0.5).sum()) * pixel_mm**2 / MAX_TUMOUR_AREA_MM2, 1.0)


def heterogeneity(rng: np.random.Generator, shape: tuple[int, int], pixel_mm: float) -> np.ndarray:
    """A smooth random field [R, R] in about [-1, 1] with features of ~4 mm: how unevenly a
    tumour grows, enhances and looks inside."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 4.0 / pixel_mm, mode="wrap")
    return (field / max(float(np.abs(field).max()), 1e-8)).astype(np.float32)


def grow(
    wm: np.ndarray,  # [G, G] white-matter share on the growth grid
    gm: np.ndarray,  # [G, G]
    seed: tuple[int, int],
    targets: np.ndarray,  # [T] rising burdens in (0, 1]
    pixel_mm: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Snapshots float32 [T, G, G] of the tumour density when each target burden is reached,
    and their burdens [T] (equal to the targets unless growth stalls first).

    Explicit finite volumes: D (pixels²/step) is 0.2 in pure white matter and 0.2/ratio in
    grey matter (ratio ~ U(4, 10)), varied by a factor of up to 3 either way by a smooth
    random field so that tumours are lobulated, not discs; face fluxes use the harmonic
    mean, so nothing enters CSF; growth rate rho ~ U(0.03, 0.06) per step.
    """
    ratio = rng.uniform(4, 10)
    rho = rng.uniform(0.03, 0.06)
    tissue = np.clip(wm + gm, 0, 1)
    uneven = np.exp(1.1 * heterogeneity(rng, wm.shape, pixel_mm))
    d = np.minimum((0.2 * wm + (0.2 / ratio) * gm) * uneven, 0.24)  # < 0.25: stable steps
    d_rows, d_cols = _face_diffusivity(d, 0), _face_diffusivity(d, 1)
    rr, cc = np.mgrid[: wm.shape[0], : wm.shape[1]]
    u = 0.8 * np.exp(-((rr - seed[0]) ** 2 + (cc - seed[1]) ** 2) / (2 * 1.5**2))
    u = (u * (tissue > 0.3)).astype(np.float32)
    record = u.copy()
    snapshots: list[np.ndarray] = []
    burdens: list[float] = []
    for _ in range(MAX_GROWTH_STEPS):
        burden = _burden(record, pixel_mm)
        while len(snapshots) < len(targets) and burden >= targets[len(snapshots)]:
            snapshots.append(record.copy())
            burdens.append(burden)
        if len(snapshots) == len(targets):
            break
        flux_rows = d_rows * np.diff(u, axis=0)
        flux_cols = d_cols * np.diff(u, axis=1)
        divergence = np.zeros_like(u)
        divergence[:-1] += flux_rows
        divergence[1:] -= flux_rows
        divergence[:, :-1] += flux_cols
        divergence[:, 1:] -= flux_cols
        u = np.clip(u + divergence + rho * tissue * u * (1 - u), 0, 1)
        np.maximum(record, u, out=record)
    while len(snapshots) < len(targets):  # growth stalled: repeat the last state
        snapshots.append(record.copy())
        burdens.append(_burden(record, pixel_mm))
    return np.stack(snapshots).astype(np.float32), np.asarray(burdens, np.float32)


def compartments(
    u: np.ndarray,  # [R, R] tumour density on the image grid (after any mass effect)
    wm: np.ndarray,  # [R, R]
    gm: np.ndarray,  # [R, R]
    uneven: np.ndarray,  # [R, R] the tumour's heterogeneity field, see heterogeneity()
    severity: float,
    pixel_mm: float,
) -> Compartments:
    """Necrotic core, enhancing rim and oedema of a tumour of density ``u``.

    A core appears from severity ~0.3 where the smoothed density saturates; the enhancing
    rim is the tumour within 4 mm of the core (a thin irregular rim around a small core,
    patchy enhancement of the whole tumour before there is one); oedema extends
    (2 + 8 * severity) mm beyond the tumour through white matter, much less through grey.
    """
    smooth = ndimage.gaussian_filter(u, 3.0 / pixel_mm)
    necrosis = np.clip((smooth - 0.9 - 0.04 * uneven) / 0.06, 0, 1)
    necrosis *= np.clip((severity - 0.25) / 0.2, 0, 1)
    solid = u > 0.5
    core = necrosis > 0.5
    if core.any():  # the viable tumour around a necrotic core enhances: a thick, uneven ring
        enhancing = np.where(solid & ~core, 0.8 + 0.2 * uneven, 0.0)
    else:  # before necrosis: faint, patchy enhancement
        enhancing = np.clip((severity - 0.1) / 0.3, 0, 1) * (0.25 + 0.2 * uneven) * solid
    enhancing = ndimage.gaussian_filter(enhancing.astype(np.float32), 0.6 / pixel_mm) * solid
    spread = blur(u, (2.0 + 8.0 * severity) / pixel_mm)
    oedema = np.clip(2.2 * spread - u, 0, 1) * np.clip(wm + 0.25 * gm, 0, 1)
    return Compartments(
        tumour=u.astype(np.float32),
        necrosis=(necrosis * (u > 0.5)).astype(np.float32),
        enhancing=np.clip(enhancing, 0, 1).astype(np.float32),
        oedema=oedema.astype(np.float32),
        texture=(uneven * np.clip((u - 0.42) / 0.16, 0, 1)).astype(np.float32),
    )
