"""Brain MRI glioma cohort: axial T1 slices of the MNI ICBM152 2009 template.

Every simulated subject is the template made individual (slice position, head
size and shape, smooth deformation, age-related atrophy) and scanned at several
timepoints by one scanner (intensity scaling, bias field, blur, Rician noise;
only the noise differs between timepoints). Glioma subjects carry a tumour grown
by the Fisher-Kolmogorov reaction-diffusion model

    du/dt = div(D(x) grad u) + rho * tissue(x) * u (1 - u),

with D larger in white than in grey matter and zero in CSF, seeded in white
matter; it is rendered as T1 hypointensity with a darker necrotic core, oedema
around it and mass effect pushing the surrounding tissue away.

Severity (glioma): tumour burden = area of {u > 0.5} on the slice, measured in
template millimetres on the simulation grid before mass effect, divided by
``MAX_TUMOUR_AREA_MM2`` (2000 mm², a disc of 25 mm radius) and clipped to 1.
The timepoints of a track are snapshots of one growth, so burden never falls
along a track. The lesion mask of an image is {u > 0.5} after mass effect and
resampling. Normal subjects have severity 0 and empty masks.

All simulation runs on a grid of ``max(resolution, 128)`` pixels over a
200 mm field of view; the tumour model always on 128 (1.5625 mm pixels), so
a subject's tumour does not depend on the requested resolution.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import nilearn
import numpy as np
from nilearn import datasets
from scipy import ndimage

from genworker.cohorts import Cohort
from genworker.cohorts.anatomy import (
    affine_grid,
    bias_field,
    expansion_displacement,
    identity_grid,
    resize,
    rician_noise,
    sample,
    smooth_displacement,
)
from genworker.cohorts.tracks import Track, assemble_cohort, severity_schedule

NAME = "brain-glioma"
FINDINGS = ("normal", "glioma")
FINDING_PATTERN = (1, 0, 1)  # subject i has finding FINDING_PATTERN[i % 3]: 2/3 glioma

FOV_MM = 200.0
FOV_CENTRE_MNI_MM = (0.0, -17.0)  # (x, y) of the image centre; the brain is centred there
SLAB_MNI_Z_MM = np.arange(4.0, 29.0)  # axial slices through the lateral ventricles
TUMOUR_GRID = 128
TUMOUR_WINDOW = 88  # the reaction-diffusion model runs on this square around the seed
MAX_TUMOUR_AREA_MM2 = 2000.0
MAX_GROWTH_STEPS = 1500
AGE_RANGE = (20.0, 85.0)
ATROPHY_MAX_MM = 2.2  # widening of sulci and ventricles at age 85 (none below 25)
MASS_EFFECT_MAX_MM = 4.0  # displacement at the tumour edge at severity 1

SEVERITY_DEFINITION = (
    "glioma: area of {u > 0.5} of the Fisher-Kolmogorov tumour density on the slice, in template "
    f"mm^2 before mass effect, divided by {MAX_TUMOUR_AREA_MM2:g} mm^2, clipped to 1; normal: 0"
)
LICENCE = (
    "nilearn's description of the ICBM152 2009 templates (datasets/description/icbm152_2009.rst) "
    "gives their licence as 'unknown'. The templates come from the McConnell Brain Imaging "
    "Centre, Montreal Neurological Institute, McGill University, whose distribution notice "
    "(copyright Louis Collins, MNI/McGill) permits use, copying, modification and distribution "
    "for any purpose without fee provided the copyright notice is kept, with no warranty."
)
CITATION = (
    "Fonov et al., NeuroImage 54(1), 2011, doi:10.1016/j.neuroimage.2010.07.033; "
    "Fonov et al., NeuroImage 47 S1, 2009, doi:10.1016/S1053-8119(09)70884-5"
)


@dataclass(frozen=True)
class TemplateSlab:
    """Axial template slices resampled to a square grid: arrays [S, G, G] in [0, 1].

    Rows run anterior -> posterior, columns patient right -> left (radiological).
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray

    @property
    def grid(self) -> int:
        return self.t1.shape[-1]

    @property
    def pixel_mm(self) -> float:
        return FOV_MM / self.grid


@functools.cache
def template_slab(grid: int) -> TemplateSlab:
    """The nilearn ICBM152 templates (bundled in the package: no download) as a slab.

    Cached per process; the arrays are read-only.
    """
    images = {
        "t1": datasets.load_mni152_template(resolution=1),
        "gm": datasets.load_mni152_gm_template(resolution=1),
        "wm": datasets.load_mni152_wm_template(resolution=1),
    }
    pixel_mm = FOV_MM / grid
    offsets = (np.arange(grid) + 0.5) * pixel_mm - FOV_MM / 2
    z, y, x = np.meshgrid(
        SLAB_MNI_Z_MM,
        FOV_CENTRE_MNI_MM[1] - offsets,  # rows: anterior first
        FOV_CENTRE_MNI_MM[0] - offsets,  # columns: patient right (x > 0) first
        indexing="ij",
    )
    slabs = {}
    for name, image in images.items():
        world = np.stack([x, y, z, np.ones_like(x)])
        voxel = np.tensordot(np.linalg.inv(image.affine)[:3], world, axes=1)
        volume = np.asarray(image.dataobj, dtype=np.float32)
        smooth = ndimage.gaussian_filter(volume, sigma=(0.45 * pixel_mm, 0.45 * pixel_mm, 0))
        slabs[name] = ndimage.map_coordinates(smooth, voxel, order=1).astype(np.float32)
    brain = np.clip((slabs["t1"] - 0.05) / 0.1, 0, 1)
    slabs["csf"] = np.clip(brain - slabs["gm"] - slabs["wm"], 0, 1)
    for array in slabs.values():
        array.setflags(write=False)
    return TemplateSlab(**slabs)


@dataclass
class Subject:
    """One individual's anatomy on the simulation grid [G, G] and its scanner settings."""

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    age: float
    sex: int
    gain: float
    gamma: float
    blur_px: float
    bias: np.ndarray  # multiplicative field at the output resolution
    noise_sigma: float


def _age_factor(age: float) -> float:
    return float(np.clip((age - 25.0) / 60.0, 0.0, 1.0))


def _subject(slab: TemplateSlab, rng: np.random.Generator, resolution: int) -> Subject:
    """Draw an individual: slice, atrophy for its age, head size/shape, deformation, scanner."""
    age = float(rng.uniform(*AGE_RANGE))
    sex = int(rng.integers(0, 2))
    position = rng.uniform(0, len(SLAB_MNI_Z_MM) - 1)
    lower = int(position)
    upper = min(lower + 1, len(SLAB_MNI_Z_MM) - 1)
    weight = position - lower
    maps = {
        name: (1 - weight) * getattr(slab, name)[lower] + weight * getattr(slab, name)[upper]
        for name in ("t1", "gm", "wm", "csf")
    }
    shape = (slab.grid, slab.grid)
    atrophy_px = ATROPHY_MAX_MM / slab.pixel_mm * _age_factor(age) * rng.uniform(0.6, 1.4)
    atrophy = expansion_displacement(maps["csf"], sigma=2.0 / slab.pixel_mm, max_shift=atrophy_px)
    head_scale = 1.0 + 0.04 * (sex - 0.5) + rng.normal(0, 0.03)
    aspect = rng.normal(0, 0.03)
    grid = affine_grid(
        shape,
        shape,
        scale=(head_scale * (1 + aspect), head_scale * (1 - aspect)),
        rotation_deg=rng.uniform(-8, 8),
        shift=tuple(rng.uniform(-0.03, 0.03, 2)),
    )
    grid += smooth_displacement(rng, shape, amplitude=0.025 * slab.grid, smoothness=slab.grid / 10)
    grid += np.stack([sample(atrophy[0], grid), sample(atrophy[1], grid)])
    return Subject(
        t1=sample(maps["t1"], grid),
        gm=sample(maps["gm"], grid),
        wm=sample(maps["wm"], grid),
        age=age,
        sex=sex,
        gain=float(rng.uniform(0.82, 1.0)),
        gamma=float(rng.uniform(0.85, 1.15)),
        blur_px=float(rng.uniform(0.0, 0.6)),
        bias=bias_field(rng, (resolution, resolution), strength=float(rng.uniform(0.03, 0.12))),
        noise_sigma=float(rng.uniform(0.01, 0.035)),
    )


def _seed_point(wm: np.ndarray, gm: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A white-matter pixel far enough inside the brain for the tumour to reach full size."""
    pixel_mm = FOV_MM / wm.shape[0]
    depth_mm = ndimage.distance_transform_edt((wm + gm) > 0.3) * pixel_mm
    candidates = np.argwhere((wm > 0.6) & (depth_mm > 22.0))
    if len(candidates) == 0:
        candidates = np.argwhere(depth_mm * wm >= (depth_mm * wm).max())
    row, col = candidates[rng.integers(len(candidates))]
    return int(row), int(col)


def _face_diffusivity(d: np.ndarray, axis: int) -> np.ndarray:
    """Harmonic mean of D across each face between neighbours along ``axis`` (0 next to CSF)."""
    a = np.take(d, np.arange(d.shape[axis] - 1), axis=axis)
    b = np.take(d, np.arange(1, d.shape[axis]), axis=axis)
    return 2 * a * b / np.maximum(a + b, 1e-8)


def grow_glioma(
    wm: np.ndarray, gm: np.ndarray, rng: np.random.Generator, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fisher-Kolmogorov growth on [128, 128] tissue maps until each target burden is reached.

    Explicit finite volumes: D (pixels²/step) is 0.2 in pure white matter and
    0.2/ratio in grey matter (ratio ~ U(4, 10)), face fluxes use the harmonic mean
    so nothing enters CSF; growth rate rho ~ U(0.03, 0.06)/step. The recorded
    density is the running maximum of u, so the tumour never shrinks between
    snapshots. Returns snapshots float32 [T, 128, 128] and their burdens [T]
    (equal to the targets unless growth stalls first).
    """
    assert wm.shape == (TUMOUR_GRID, TUMOUR_GRID), "tumour model runs on the 128 grid"
    pixel_area = (FOV_MM / TUMOUR_GRID) ** 2
    ratio = rng.uniform(4, 10)
    rho = rng.uniform(0.03, 0.06)
    row, col = _seed_point(wm, gm, rng)
    half = TUMOUR_WINDOW // 2
    top = int(np.clip(row - half, 0, TUMOUR_GRID - TUMOUR_WINDOW))
    left = int(np.clip(col - half, 0, TUMOUR_GRID - TUMOUR_WINDOW))
    window = np.s_[top : top + TUMOUR_WINDOW, left : left + TUMOUR_WINDOW]
    tissue = np.clip(wm[window] + gm[window], 0, 1)
    d = 0.2 * wm[window] + (0.2 / ratio) * gm[window]
    d_rows, d_cols = _face_diffusivity(d, 0), _face_diffusivity(d, 1)
    rr, cc = np.mgrid[:TUMOUR_WINDOW, :TUMOUR_WINDOW]
    u = 0.8 * np.exp(-((rr - (row - top)) ** 2 + (cc - (col - left)) ** 2) / (2 * 1.5**2))
    u = (u * (tissue > 0.3)).astype(np.float32)
    record = u.copy()
    snapshots, burdens = [], []
    for _ in range(MAX_GROWTH_STEPS):
        burden = min(float((record > 0.5).sum()) * pixel_area / MAX_TUMOUR_AREA_MM2, 1.0)
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
        burdens.append(min(float((record > 0.5).sum()) * pixel_area / MAX_TUMOUR_AREA_MM2, 1.0))
    full = np.zeros((len(targets), TUMOUR_GRID, TUMOUR_GRID), np.float32)
    full[(slice(None), *window)] = np.stack(snapshots)
    return full, np.asarray(burdens, np.float32)


def _render(
    subject: Subject, u: np.ndarray, severity: float, rng: np.random.Generator, resolution: int
) -> tuple[np.ndarray, np.ndarray]:
    """One scan: mass effect, oedema and tumour on the subject's T1, then the scanner.

    ``u`` is the tumour density on the subject grid [G, G]. Returns image float32
    [R, R] in [0, 1] and mask bool [R, R].
    """
    grid_size = subject.t1.shape[0]
    pixel_mm = FOV_MM / grid_size
    t1, gm, wm = subject.t1, subject.gm, subject.wm
    oedema = np.zeros_like(u)
    core = np.zeros_like(u)
    if severity > 0:
        radius_mm = np.sqrt(severity * MAX_TUMOUR_AREA_MM2 / np.pi)
        push = expansion_displacement(
            u,
            sigma=(5.0 + radius_mm) / pixel_mm,
            max_shift=MASS_EFFECT_MAX_MM / pixel_mm * severity,
        )
        grid = identity_grid(u.shape) + push
        t1, gm, wm, u = (sample(a, grid) for a in (t1, gm, wm, u))
        spread = ndimage.gaussian_filter(u, (2.0 + 5.0 * severity) / pixel_mm)
        oedema = np.clip(1.8 * spread - u, 0, 1) * np.clip(wm + 0.3 * gm, 0, 1)
        core = np.clip((ndimage.gaussian_filter(u, 2.0 / pixel_mm) - 0.85) / 0.15, 0, 1) * severity
    intensity = t1 * (1 - 0.06 * _age_factor(subject.age) * wm) * (1 - 0.25 * oedema)
    tumour_t1 = 0.4 - 0.15 * core
    intensity = intensity * (1 - u) + u * tumour_t1
    image = resize(subject.gain * np.clip(intensity, 0, None) ** subject.gamma, resolution)
    if subject.blur_px > 0:
        image = ndimage.gaussian_filter(image, subject.blur_px)
    image = rician_noise(rng, image * subject.bias, subject.noise_sigma)
    mask = resize(u, resolution) > 0.5
    return np.clip(image, 0, 1).astype(np.float32), mask


def simulate_track(
    rng: np.random.Generator, finding: int, *, resolution: int, timepoints: int
) -> Track:
    """One subject at ``timepoints`` scans; a glioma track's burden rises along it."""
    slab = template_slab(max(resolution, TUMOUR_GRID))
    subject = _subject(slab, rng, resolution)
    if FINDINGS[finding] == "normal":
        tumours = np.zeros((timepoints, slab.grid, slab.grid), np.float32)
        severity = np.zeros(timepoints, np.float32)
    else:
        targets = severity_schedule(rng, timepoints, first=(0.05, 0.2), last=rng.uniform(0.7, 1.0))
        wm, gm = subject.wm, subject.gm
        if slab.grid != TUMOUR_GRID:
            wm, gm = resize(wm, TUMOUR_GRID), resize(gm, TUMOUR_GRID)
        tumours, severity = grow_glioma(wm, gm, rng, targets)
        if slab.grid != TUMOUR_GRID:
            tumours = np.stack([resize(u, slab.grid) for u in tumours])
    scans = [
        _render(subject, u, float(s), rng, resolution)
        for u, s in zip(tumours, severity, strict=True)
    ]
    return Track(
        finding=finding,
        images=np.stack([image for image, _ in scans]),
        masks=np.stack([mask for _, mask in scans]),
        severity=severity,
        age=subject.age,
        sex=subject.sex,
        region=resize(subject.gm + subject.wm, resolution) > 0.5,
    )


def build(*, resolution: int, n_subjects: int, seed: int, timepoints: int = 5) -> Cohort:
    """The brain glioma cohort; subject i uses its own random stream (seed, i)."""
    tracks = [
        simulate_track(
            np.random.default_rng([seed, i]),
            FINDING_PATTERN[i % len(FINDING_PATTERN)],
            resolution=resolution,
            timepoints=timepoints,
        )
        for i in range(n_subjects)
    ]
    provenance = {
        "source": "MNI ICBM152 2009 T1, grey- and white-matter templates (1 mm) bundled with "
        f"nilearn {nilearn.__version__} (datasets/data/mni_icbm152_{{t1,gm,wm}}_tal_nlin_sym_09a"
        "_converted.nii.gz)",
        "licence": LICENCE,
        "citation": CITATION,
        "simulator": "genworker.cohorts.brain",
        "severity": SEVERITY_DEFINITION,
        "parameters": {
            "fov_mm": FOV_MM,
            "slab_mni_z_mm": [float(SLAB_MNI_Z_MM[0]), float(SLAB_MNI_Z_MM[-1])],
            "timepoints": timepoints,
            "age_range": list(AGE_RANGE),
            "atrophy_max_mm": ATROPHY_MAX_MM,
            "mass_effect_max_mm": MASS_EFFECT_MAX_MM,
            "max_tumour_area_mm2": MAX_TUMOUR_AREA_MM2,
        },
    }
    return assemble_cohort(NAME, FINDINGS, tracks, seed=seed, modality="MR", provenance=provenance)
