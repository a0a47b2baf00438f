"""Brain MRI cohort: axial T1, T2-FLAIR and T1 post-contrast of real brains, with gliomas.

Base anatomy is every real brain an installable package ships as axial T1 (see
:data:`BASE_SOURCES`): six people's skull-stripped slices and Colin27 from the antspyx
sdist, and the MNI ICBM152 2009 average from nilearn, the 3D ones at several levels
through the lateral ventricles and basal ganglia. Each base slice is split into tissue
shares (CSF, grey and white matter) by a three-class Gaussian mixture of its T1 values;
what the mixture does not explain (nuclei, vessels, partial volume) is kept as texture.

A simulated subject is a base slice made individual: head size and shape (by sex),
pose, a smooth deformation, and age (sulci and ventricles widen, periventricular white
matter hyperintensities appear on FLAIR). Images are rendered from the tissue shares by a
tissue-class signal model per contrast (:data:`SIGNAL`), then "scanned": gain, contrast
curve, bias field and blur per sequence; Rician noise is added by :func:`acquire`, so the
noise-free render a generator learns and the acquired image it is compared with both
exist. The three contrasts of a study are one acquisition: the same anatomy, aligned.

Glioma subjects carry a tumour grown by :mod:`genworker.cohorts.glioma` in the requested
hemisphere and lobe: a necrotic core that darkens on every contrast, an enhancing rim on
T1c, infiltrative oedema bright on FLAIR, and mass effect pushing the brain aside.

Images are skull-stripped, as the sources are (and as the BraTS collections present
gliomas). Orientation: rows run anterior to posterior, columns from the patient's right
to the patient's left (radiological display; DICOM ImageOrientationPatient [1,0,0,0,1,0]).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import nibabel as nib
import nilearn
import numpy as np
from nilearn import datasets
from PIL import Image
from scipy import ndimage

from genworker.cohorts import glioma, sources
from genworker.cohorts.anatomy import (
    affine_grid,
    bias_field,
    expansion_displacement,
    identity_grid,
    largest_piece,
    resize,
    resize_grid,
    rician_noise,
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

NAME = "brain-mri"
FINDINGS = ("normal", "glioma")
FINDING_PATTERN = (1, 0, 1)  # subject i has finding FINDING_PATTERN[i % 3]: 2/3 glioma
CONTRASTS = ("T1", "FLAIR", "T1c")
ANATOMY_MAPS = ("csf", "gm", "wm")
RESOLUTION = 256
FOV_MM = 200.0
PIXEL_MM = FOV_MM / RESOLUTION
LEVELS_MM = np.arange(0.0, 26.0, 3.0)  # MNI z of the 3D sources' slices
JPEG_PIXEL_MM = 1.0  # the antspyx slices are 256² at about 1 mm
AGE_RANGE = (20.0, 85.0)
ATROPHY_MAX_MM = 3.0  # widening of sulci and ventricles at age 85 (none below 25)
MASS_EFFECT_MAX_MM = 4.0  # displacement at the tumour edge at severity 1
LESION_MAP_SIZE = 128  # the lesion model's maps are kept at this size for the lesion renderer

# Relative signal of each tissue class per contrast (1.5-3 T clinical sequences: T1
# spin echo or MPRAGE, T2-FLAIR with CSF nulled, T1 after gadolinium).
#             csf   gm    wm    tumour necrosis
SIGNAL = {
    "T1": (0.10, 0.52, 0.80, 0.42, 0.20),
    "FLAIR": (0.05, 0.64, 0.47, 0.84, 0.52),
    "T1c": (0.12, 0.55, 0.80, 0.46, 0.20),
}
TEXTURE_GAIN = {"T1": 1.0, "FLAIR": -0.5, "T1c": 1.0}  # FLAIR inverts grey/white contrast
ENHANCEMENT = 0.65  # T1c signal added where the tumour enhances fully
OEDEMA_FLAIR = 0.88
OEDEMA_T1_DROP = 0.25  # T1 and T1c fall by this share in oedema
WMH_FLAIR = 0.78  # periventricular white matter hyperintensities
TUMOUR_TEXTURE = 0.06  # how much the tumour's signal varies inside it

LICENCE = {
    "antspyx": "Apache-2.0 (ANTsPy data: six subjects' T1 slices, Colin27)",
    "mni152": (
        "MNI ICBM152 2009 (nilearn): copyright Louis Collins, MNI/McGill; use, copying and "
        "distribution permitted for any purpose with the copyright notice, no warranty"
    ),
}
CITATION = (
    "Fonov et al., NeuroImage 54(1), 2011 (MNI ICBM152 2009); Holmes et al., J Comput Assist "
    "Tomogr 22(2), 1998 (Colin27); Avants et al., ANTs (antspyx sample data)"
)
JPEG_SLICES = ("r16", "r27", "r30", "r62", "r64", "r85")


@dataclass(frozen=True)
class BaseSlice:
    """A real brain's axial slice on the image grid [R, R]."""

    source: str
    tissue: np.ndarray  # float32 [3, R, R]: csf, gm, wm shares (0 outside the brain)
    texture: np.ndarray  # float32 [R, R]: T1 the tissue classes do not explain


def _gmm_shares(values: np.ndarray, iterations: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Three-class 1D Gaussian mixture of T1 values (dark to bright: csf, gm, wm).

    Returns the posterior shares [3, N] and the class means [3]."""
    means = np.quantile(values, [0.08, 0.45, 0.85])
    sds = np.full(3, values.std() / 4)
    weights = np.full(3, 1 / 3)
    for _ in range(iterations):
        density = weights[:, None] * np.exp(-0.5 * ((values - means[:, None]) / sds[:, None]) ** 2)
        density /= sds[:, None]
        shares = density / np.maximum(density.sum(0), 1e-12)
        total = shares.sum(1) + 1e-9
        weights = total / total.sum()
        means = (shares * values).sum(1) / total
        sds = np.sqrt((shares * (values - means[:, None]) ** 2).sum(1) / total) + 1e-3
    order = np.argsort(means)
    return shares[order], means[order]


def _split_tissue(t1: np.ndarray, source: str) -> BaseSlice:
    """Tissue shares and texture of a T1 slice [R, R] (background 0)."""
    brain = ndimage.binary_fill_holes(ndimage.gaussian_filter(t1, 1.0) > 0.08 * t1.max())
    brain = largest_piece(brain)
    values = t1[brain]
    t1 = t1 / np.percentile(values, 95)
    shares, means = _gmm_shares(t1[brain])
    tissue = np.zeros((3, *t1.shape), np.float32)
    tissue[:, brain] = shares
    edge = ndimage.gaussian_filter(brain.astype(np.float32), 0.7)
    tissue *= edge[None]
    model = np.tensordot(means / means[2] * SIGNAL["T1"][2], tissue, axes=1)
    texture = (t1 * SIGNAL["T1"][2] - model) * brain
    return BaseSlice(source, tissue, np.clip(texture, -0.25, 0.25).astype(np.float32))


def _volume_slices(image: nib.Nifti1Image, source: str) -> list[BaseSlice]:
    """Axial slices of a 3D T1 (any orientation, world mm) at ``LEVELS_MM``, brain centred."""
    volume = np.asarray(image.dataobj, dtype=np.float32)
    inverse = np.linalg.inv(image.affine)
    brain_voxels = np.argwhere(volume > 0.1 * volume.max())
    centre_world = image.affine[:3, :3] @ brain_voxels.mean(0) + image.affine[:3, 3]
    offsets = (np.arange(RESOLUTION) + 0.5) * PIXEL_MM - FOV_MM / 2
    slices = []
    for z in LEVELS_MM:
        y, x = np.meshgrid(
            centre_world[1] - offsets,  # rows: anterior first
            centre_world[0] - offsets,  # columns: the patient's right (x > 0) first
            indexing="ij",
        )
        world = np.stack([x, y, np.full_like(x, z), np.ones_like(x)])
        voxel = np.tensordot(inverse[:3], world, axes=1)
        t1 = ndimage.map_coordinates(volume, voxel, order=1).astype(np.float32)
        slices.append(_split_tissue(t1, f"{source} z={z:+.0f} mm"))
    return slices


def _jpeg_slice(name: str) -> BaseSlice:
    """One of antspyx's 256² slices (anterior up), brain centred, at ``JPEG_PIXEL_MM``."""
    path = sources.data_path("antspyx", f"data/{name}slice.jpg")
    t1 = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255
    t1 = ndimage.gaussian_filter(t1, 0.5)  # JPEG blocks
    brain = t1 > 0.08
    centre = np.argwhere(brain).mean(0)
    grid = affine_grid((RESOLUTION, RESOLUTION), t1.shape, scale=(JPEG_PIXEL_MM / PIXEL_MM,) * 2)
    grid += (centre - (np.asarray(t1.shape) - 1) / 2)[:, None, None].astype(np.float32)
    return _split_tissue(sample(t1, grid), f"antspyx {name}")


@functools.cache
def base_slices() -> tuple[BaseSlice, ...]:
    """Every base slice, per process; the MNI average and Colin27 at several levels."""
    found = [_jpeg_slice(name) for name in JPEG_SLICES]
    found += _volume_slices(nib.load(sources.data_path("antspyx", "data/ch2.nii.gz")), "Colin27")
    found += _volume_slices(datasets.load_mni152_template(resolution=1), "MNI152 2009")
    for base in found:
        base.tissue.setflags(write=False)
        base.texture.setflags(write=False)
    return tuple(found)


def _draw_base(rng: np.random.Generator) -> BaseSlice:
    """A person first (each source equally likely), then one of its levels."""
    slices = base_slices()
    people = sorted({base.source.split(" z=")[0] for base in slices})
    person = people[rng.integers(len(people))]
    mine = [base for base in slices if base.source.split(" z=")[0] == person]
    return mine[rng.integers(len(mine))]


@dataclass
class Subject:
    """One individual's anatomy [*, R, R] and how the scanner images them."""

    source: str
    tissue: np.ndarray  # [3, R, R]
    texture: np.ndarray  # [R, R]
    wmh: np.ndarray  # [R, R] periventricular white matter hyperintensity share
    age: float
    sex: int
    gain: np.ndarray  # [3] per contrast
    gamma: np.ndarray  # [3]
    blur_px: float
    bias: np.ndarray  # [R, R]
    noise_sigma: np.ndarray  # [3]

    @property
    def brain(self) -> np.ndarray:
        return self.tissue.sum(0) > 0.5


def age_factor(age: float) -> float:
    return float(np.clip((age - 25.0) / 60.0, 0.0, 1.0))


def _periventricular(tissue: np.ndarray, age: float, rng: np.random.Generator) -> np.ndarray:
    """Caps and a band of FLAIR-bright white matter around the ventricles, from age ~55."""
    amount = np.clip((age - 55.0) / 30.0, 0, 1) * rng.uniform(0.4, 1.0)
    if amount == 0:
        return np.zeros(tissue.shape[1:], np.float32)
    brain = tissue.sum(0) > 0.5
    depth = ndimage.distance_transform_edt(brain) * PIXEL_MM
    ventricles = (tissue[0] > 0.5) & (depth > 15.0)
    near = ndimage.gaussian_filter(ventricles.astype(np.float32), (2.0 + 4.0 * amount) / PIXEL_MM)
    return (np.clip(3.0 * near, 0, 1) * tissue[2] * amount).astype(np.float32)


def draw_subject(rng: np.random.Generator, age: float, sex: int) -> Subject:
    """An individual of ``age`` and ``sex`` on a randomly drawn base slice."""
    base = _draw_base(rng)
    shape = (RESOLUTION, RESOLUTION)
    atrophy_px = ATROPHY_MAX_MM / PIXEL_MM * age_factor(age) * rng.uniform(0.6, 1.4)
    atrophy = expansion_displacement(base.tissue[0], sigma=2.0 / PIXEL_MM, max_shift=atrophy_px)
    head_scale = 1.0 + 0.04 * (sex - 0.5) + rng.normal(0, 0.035)
    aspect = rng.normal(0, 0.03)
    grid = affine_grid(
        shape,
        shape,
        scale=(head_scale * (1 + aspect), head_scale * (1 - aspect)),
        rotation_deg=rng.uniform(-8, 8),
        shift=tuple(rng.uniform(-0.025, 0.025, 2)),
    )
    grid += smooth_displacement(rng, shape, amplitude=0.025 * RESOLUTION, smoothness=RESOLUTION / 9)
    grid += np.stack([sample(atrophy[0], grid), sample(atrophy[1], grid)])
    tissue = np.stack([sample(share, grid) for share in base.tissue])
    return Subject(
        source=base.source,
        tissue=tissue,
        texture=sample(base.texture, grid),
        wmh=_periventricular(tissue, age, rng),
        age=age,
        sex=sex,
        gain=rng.uniform(0.85, 1.0, 3).astype(np.float32),
        gamma=rng.uniform(0.9, 1.1, 3).astype(np.float32),
        blur_px=float(rng.uniform(0.0, 0.5)),
        bias=bias_field(rng, shape, strength=float(rng.uniform(0.03, 0.12))),
        noise_sigma=draw_noise(rng),
    )


def draw_noise(rng: np.random.Generator) -> np.ndarray:
    """A scanner's Rician noise level per contrast [3] (of the white-matter signal ~0.8)."""
    return rng.uniform(0.012, 0.03, 3).astype(np.float32)


def _mass_effect(u: np.ndarray, severity: float) -> np.ndarray:
    """Sampling grid [2, R, R] that pushes the brain away from a tumour of density ``u``."""
    radius_mm = np.sqrt(severity * glioma.MAX_TUMOUR_AREA_MM2 / np.pi)
    push = expansion_displacement(
        u, sigma=(5.0 + radius_mm) / PIXEL_MM, max_shift=MASS_EFFECT_MAX_MM / PIXEL_MM * severity
    )
    return identity_grid(u.shape) + push


def render(
    tissue: np.ndarray,  # [3, R, R] csf, gm, wm
    texture: np.ndarray,  # [R, R]
    wmh: np.ndarray,  # [R, R]
    lesion: glioma.Compartments | None,
) -> np.ndarray:  # float32 [3, R, R]: T1, FLAIR, T1c before the scanner
    """The tissue-class signal model."""
    out = []
    u = 0.0 if lesion is None else np.clip((lesion.tumour - 0.42) / 0.16, 0, 1)
    for contrast in CONTRASTS:
        signal = SIGNAL[contrast]
        image = np.tensordot(np.asarray(signal[:3], np.float32), tissue, axes=1)
        image = image + TEXTURE_GAIN[contrast] * texture
        if contrast == "FLAIR":
            image = image * (1 - wmh) + WMH_FLAIR * wmh * tissue[2]
        if lesion is not None:
            if contrast == "FLAIR":
                image = image * (1 - lesion.oedema) + OEDEMA_FLAIR * lesion.oedema
            else:
                image = image * (1 - OEDEMA_T1_DROP * lesion.oedema)
            inside = signal[3] * (1 - lesion.necrosis) + signal[4] * lesion.necrosis
            inside = inside + TUMOUR_TEXTURE * lesion.texture
            if contrast == "T1c":
                inside = inside + ENHANCEMENT * lesion.enhancing
            image = image * (1 - u) + inside * u * tissue.sum(0).clip(0, 1)
        out.append(image)
    return np.clip(np.stack(out), 0, 1.2).astype(np.float32)


def scanner(subject: Subject, image: np.ndarray) -> np.ndarray:
    """Gain, contrast curve, blur and bias of the subject's scanner: noise-free [3, R, R]."""
    out = np.empty_like(image)
    for c in range(len(CONTRASTS)):
        channel = subject.gain[c] * np.clip(image[c], 0, None) ** subject.gamma[c]
        if subject.blur_px > 0:
            channel = ndimage.gaussian_filter(channel, subject.blur_px)
        out[c] = channel * subject.bias
    return np.clip(out, 0, 1).astype(np.float32)


def acquire(clean: np.ndarray, noise_sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rician noise per contrast on noise-free images [..., 3, R, R]."""
    noisy = np.empty_like(clean)
    for c in range(clean.shape[-3]):
        noisy[..., c, :, :] = rician_noise(rng, clean[..., c, :, :], float(noise_sigma[c]))
    return np.clip(noisy, 0, 1).astype(np.float32)


def lesion_maps(lesion: glioma.Compartments, grid: np.ndarray) -> np.ndarray:
    """The lesion renderer's input [7, 128, 128]: tumour, necrosis, enhancing, oedema, texture,
    and the mass effect's displacement (rows, columns, in units of the field of view)."""
    displacement = (grid - identity_grid(grid.shape[1:])) / RESOLUTION
    maps = [
        lesion.tumour, lesion.necrosis, lesion.enhancing, lesion.oedema, lesion.texture,
        *displacement,
    ]  # fmt: skip
    return np.stack([resize(m, LESION_MAP_SIZE) for m in maps]).astype(np.float32)


def tumour_timepoint(
    tissue: np.ndarray, u: np.ndarray, uneven: np.ndarray, severity: float
) -> tuple[np.ndarray, glioma.Compartments, np.ndarray]:
    """Mass effect on the anatomy, then the tumour's compartments: the warped tissue
    [3, R, R], the compartments, and the sampling grid [2, R, R] used."""
    grid = _mass_effect(u, severity)
    warped = np.stack([sample(share, grid) for share in tissue])
    u, uneven = sample(u, grid), sample(uneven, grid)
    parts = glioma.compartments(u, warped[2], warped[1], uneven, severity, PIXEL_MM)
    return warped, parts, grid


def grow_tumour(
    tissue: np.ndarray, rng: np.random.Generator, severities: np.ndarray, side: str, location: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """Tumour densities [T, R, R] grown to ``severities`` in the given hemisphere and lobe of
    ``tissue`` [3, R, R], with the burdens reached; None if no seed fits there."""
    small = np.stack([resize(share, glioma.GROWTH_GRID) for share in tissue[1:]])
    growth_mm = FOV_MM / glioma.GROWTH_GRID
    seed = glioma.seed_point(small[1], small[0], growth_mm, rng, side=side, location=location)
    if seed is None:
        return None
    u, burden = glioma.grow(small[1], small[0], seed, severities, growth_mm, rng)
    return np.stack([upsample(frame, RESOLUTION) for frame in u]), burden


def upsample(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear enlargement (no smoothing first: nothing to alias)."""
    return sample(image, resize_grid(image.shape, (size, size)))


def _any_place(
    tissue: np.ndarray, rng: np.random.Generator, severities: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str, str]:
    """A tumour in the first (side, lobe) of a random order that has room for it."""
    places = [(side, location) for side in glioma.SIDES for location in glioma.LOCATIONS]
    for index in rng.permutation(len(places)):
        side, location = places[index]
        grown = grow_tumour(tissue, rng, severities, side, location)
        if grown is not None:
            return (*grown, side, location)
    raise ValueError("this subject's brain has no deep white matter to seed a glioma in")


def simulate_track(
    rng: np.random.Generator, finding: int, *, timepoints: int, age: float | None = None
) -> ScanTrack:
    """One subject scanned at ``timepoints``; a glioma track's burden rises along it."""
    age = float(rng.uniform(*AGE_RANGE)) if age is None else age
    sex = int(rng.integers(0, 2))
    subject = draw_subject(rng, age, sex)
    normal = scanner(subject, render(subject.tissue, subject.texture, subject.wmh, None))
    n_maps = 7
    empty = np.zeros((timepoints, n_maps, LESION_MAP_SIZE, LESION_MAP_SIZE), np.float32)
    if FINDINGS[finding] == "normal":
        clean = np.repeat(normal[None], timepoints, axis=0)
        masks = np.zeros((timepoints, RESOLUTION, RESOLUTION), bool)
        return ScanTrack(
            finding, clean, masks, np.zeros(timepoints, np.float32), age, sex, "", "",
            normal, subject.tissue, empty, subject.noise_sigma, subject.source,
        )  # fmt: skip
    targets = severity_schedule(rng, timepoints, first=(0.05, 0.2), last=rng.uniform(0.7, 1.0))
    densities, severity, side, location = _any_place(subject.tissue, rng, targets)
    uneven = glioma.heterogeneity(rng, (RESOLUTION, RESOLUTION), PIXEL_MM)
    clean, masks, maps = [], [], []
    for u, s in zip(densities, severity, strict=True):
        warped, parts, grid = tumour_timepoint(subject.tissue, u, uneven, float(s))
        texture = sample(subject.texture, grid)
        wmh = sample(subject.wmh, grid)
        clean.append(scanner(subject, render(warped, texture, wmh, parts)))
        masks.append(parts.tumour > 0.5)
        maps.append(lesion_maps(parts, grid))
    return ScanTrack(
        finding, np.stack(clean), np.stack(masks), severity, age, sex, side, location,
        normal, subject.tissue, np.stack(maps), subject.noise_sigma, subject.source,
    )  # fmt: skip


def body_mask(anatomy: np.ndarray) -> np.ndarray:
    """bool [R, R]: the (skull-stripped) brain of anatomy maps [A, R, R]."""
    return anatomy.sum(0) > 0.5


def body_masks(anatomy: np.ndarray, lesion_maps: np.ndarray) -> np.ndarray:
    """bool [T, R, R]: the brain at each timepoint. The anatomy maps [A, R, R] are the
    patient's before the tumour; its mass effect, whose displacement is the last two of the
    lesion maps [T, 7, m, m], pushes the brain's outline outwards near a cortical tumour."""
    brain = anatomy.sum(0)
    size = brain.shape[-1]
    bodies = []
    for maps in lesion_maps:
        shift = np.stack([upsample(d, size) for d in maps[-2:]]) * size
        bodies.append(sample(brain, identity_grid(brain.shape) + shift) > 0.5)
    return np.stack(bodies)


def facts(mask: np.ndarray, anatomy: np.ndarray) -> dict:
    """Centroid, longest diameter (mm), area (mm²), side and lobe of a lesion mask."""
    midline, extent = glioma.brain_axes(body_mask(anatomy))
    found = lesion_facts(mask, PIXEL_MM)
    if found:
        found["side"] = glioma.side_of(found["centroid"][1], midline)
        found["location"] = glioma.location_of(found["centroid"][0], extent)
    return found


def subject_track(seed: int, index: int, timepoints: int, finding: int | None = None) -> ScanTrack:
    """Subject ``index`` of the cohort of ``seed``: its own random stream (seed, index); its
    finding by ``FINDING_PATTERN`` unless given."""
    if finding is None:
        finding = FINDING_PATTERN[index % len(FINDING_PATTERN)]
    return simulate_track(np.random.default_rng([seed, index]), finding, timepoints=timepoints)


def build(*, n_subjects: int, seed: int, timepoints: int = 5, workers: int = 1) -> ScanCohort:
    """The brain MRI cohort, simulated in ``workers`` processes (the same result for any)."""
    tracks = simulate_in_parallel(subject_track, n_subjects, seed, timepoints, workers)
    provenance = {
        "source": "six subjects' axial T1 slices and Colin27 from the antspyx 0.6.3 sdist; "
        f"MNI ICBM152 2009 T1 (nilearn {nilearn.__version__})",
        "licence": LICENCE,
        "citation": CITATION,
        "simulator": "genworker.cohorts.brain_mri",
        "severity": (
            "glioma: area of {u > 0.5} of the Fisher-Kolmogorov tumour density, in mm^2 "
            f"before mass effect, / {glioma.MAX_TUMOUR_AREA_MM2:g} mm^2, clipped to 1; normal: 0"
        ),
        "parameters": {
            "fov_mm": FOV_MM,
            "resolution": RESOLUTION,
            "contrasts": list(CONTRASTS),
            "levels_mm": [float(z) for z in LEVELS_MM],
            "age_range": list(AGE_RANGE),
            "atrophy_max_mm": ATROPHY_MAX_MM,
            "mass_effect_max_mm": MASS_EFFECT_MAX_MM,
            "signal": {name: list(values) for name, values in SIGNAL.items()},
        },
    }
    return assemble_scans(
        NAME, FINDINGS, CONTRASTS, tracks, seed=seed, modality="MR", pixel_mm=PIXEL_MM,
        provenance=provenance,
    )  # fmt: skip
