"""Honest evaluation of a latent model against fresh simulated patients.

Three sets of series are made, each case reduced at once to a :class:`CaseRecord` (its
per-case figures and the small arrays the set figures need):

- **generated**: the model's cases, one per held-out patient, with that patient's finding,
  age, sex and severities; side and location are left to the model, as a template that
  names neither leaves them;
- **held-out simulation**: subjects simulated from :data:`EVALUATION_SEED`, a stream no
  recipe trains on, acquired with the simulator's noise like the generated images;
- **training reference**: subjects of the model's own training cohort (its seed, train
  split only), re-simulated: the Fréchet distance's reference and the memorisation check's
  training images.

Every lesion finding has its own figures (keys ``<finding>.<figure>``) from as many cases
of it; the distribution figures (two-sample AUC, Fréchet distance, memorisation) are over
every image. A lesion is read back from an image the way the model checks its own cases
(:meth:`LatentModel.read`), on the held-out simulation too. Every figure is computed the
same way on the generated and the held-out set, so each has the simulation's own value
beside it. The simulated sets are made once; each evaluation seed generates its own cases
(its own z and plans for the same conditions), draws a bootstrap resample of the generated
and the held-out cases for the per-finding figures, and trains its own two-sample classifier
on its own split, so the spread of a figure counts the model's own draws: one generation
resampled understates it (a lesion's contrast-to-noise moves about three times further
between generations than between resamples of one). The Fréchet distance and the
memorisation check are taken on the whole sets (:func:`seed_figures` says why). The Fréchet
distance uses the fixed, shipped feature space (:mod:`genworker.latent.feature_space`).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from genworker import metrics
from genworker.cohorts import chest_radiograph, glioma
from genworker.cohorts.scans import ScanTrack
from genworker.cohorts.tracks import HELD_OUT_FRACTION, split_by_track
from genworker.latent.feature_space import FeatureSpace
from genworker.latent.model import CaseRejected, LatentModel
from genworker.latent.planning import PlanningError
from genworker.latent.recipes import LatentRecipe
from genworker.latent.segmenter import dice
from genworker.latent.simulators import SIMULATORS
from genworker.networks import z_from_seed

EVALUATION_SEED = 20_261_127  # the held-out subjects' stream; no recipe may train on it
TIMEPOINTS = 4  # of each lesion series (a normal case is one image)
SMALL = 128  # the two-sample classifier sees images area-downsampled to this
CLASSIFIER_EPOCHS = 8  # passes of the two-sample classifier over its training half
DESCRIPTOR = 32  # memorisation compares normal images area-downsampled to this
IDENTITY_MARGIN_MM = 10.0  # SSIM leaves out the lesion grown by this (mass effect reaches ~4)
RING_MM = 6.0  # contrast-to-noise: the lesion against the body this far around it
BORDER_PX = 1  # a mask may reach this far outside the body (its blurred edge)
MONOTONE_TOLERANCE = 0.02  # read area may fall by this share of the largest lesion

# Each finding's lesion area at severity 1, the scale of the monotone test's tolerance.
LESION_AREA_MM2 = {
    "glioma": glioma.MAX_TUMOUR_AREA_MM2,
    "nodule": chest_radiograph.MAX_NODULE_AREA_MM2,
    "effusion": chest_radiograph.EFFUSION_AREA_MM2,
}

# Gantry's quality targets for a shipped model, (figure, comparison, bound): those of each
# lesion finding, then those of the whole set of images.
FINDING_TARGETS = (
    ("mask_clean_share", ">=", 0.98),
    ("dice", ">=", 0.85),
    ("side_share_gap", "<=", 0.10),
    ("spearman", ">=", 0.9),
    ("monotone_share", ">=", 0.9),
    ("identity_ssim", ">=", 0.9),
    ("cnr_ratio_min", ">=", 0.8),
)
SET_TARGETS = (
    ("c2st_auc", "<=", 0.8),
    ("fd_ratio", "<=", 2.0),
)


@dataclass
class CaseRecord:
    """One case, reduced to what the figures need."""

    finding: str
    severity: np.ndarray  # float32 [T] stored
    side: str  # stored ("" without a lesion)
    location: str
    features: np.ndarray  # float32 [T, D] in the fixed feature space
    small: np.ndarray | None  # float16 [T, C, SMALL, SMALL] for the two-sample classifier
    descriptor: np.ndarray  # float32 [C * DESCRIPTOR²] the patient's normal image
    dice: np.ndarray  # float32 [T] lesion read back vs stored mask; nan where none is stored
    mask_clean: np.ndarray  # bool [T] one component, inside the body, off the border
    segmented_mm2: np.ndarray  # float32 [T] area of the lesion read back
    seen_side: str  # where the lesion is read at the last timepoint ("" none)
    seen_location: str
    identity_ssim: float  # of the noise-free images; nan for a single image
    identity_ssim_acquired: float  # the same of the acquired images (noise differs)
    cnr: np.ndarray  # float32 [C] at the last timepoint; nan without a lesion

    @property
    def has_lesion(self) -> bool:
        return bool(np.isfinite(self.dice).any())


def area_down(images: np.ndarray, size: int) -> np.ndarray:
    """Block means of images [..., R, R] to [..., size, size] (R a multiple of size); images
    no larger than ``size`` as they are."""
    r = images.shape[-1]
    if r <= size:
        return images
    k = r // size
    return images.reshape(*images.shape[:-2], size, k, size, k).mean(axis=(-3, -1))


def mask_is_clean(mask: np.ndarray, body: np.ndarray) -> bool:
    """One connected piece, inside the body, not touching the image border."""
    _, pieces = ndimage.label(mask)
    outside = mask & ~ndimage.binary_dilation(body, iterations=BORDER_PX)
    edge = mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
    return pieces == 1 and not outside.any() and not edge


def identity_ssim(images: np.ndarray, masks: np.ndarray, body: np.ndarray, margin_px: int) -> float:
    """Mean SSIM between consecutive timepoints of images [T, C, R, R], every contrast,
    inside the body and outside the union of both masks grown by ``margin_px`` and by the
    SSIM window's reach (so no window sees the lesion)."""
    reach = margin_px + metrics.SSIM_RADIUS
    square = np.ones((2 * reach + 1, 2 * reach + 1), bool)
    scores = []
    for t in range(len(images) - 1):
        lesion = masks[t] | masks[t + 1]
        if lesion.any():
            lesion = ndimage.binary_dilation(lesion, structure=square)
        region = body & ~lesion
        if not region.any():
            continue
        for c in range(images.shape[1]):
            scores.append(float(metrics.ssim_map(images[t, c], images[t + 1, c])[region].mean()))
    return float(np.mean(scores)) if scores else float("nan")


def contrast_to_noise(
    image: np.ndarray, clean: np.ndarray, mask: np.ndarray, body: np.ndarray, ring_px: int
) -> np.ndarray:
    """Per contrast [C] of image [C, R, R]: (mean in the lesion - mean in the body around it)
    / the sd of the image's noise (image - its noise-free ``clean``) in that ring. Signed: a
    lesion darker than its surround has a negative CNR."""
    ring = ndimage.binary_dilation(mask, iterations=ring_px) & ~mask & body
    if not mask.any() or ring.sum() < 20:
        return np.full(len(image), np.nan, np.float32)
    noise = image - clean
    return np.array(
        [
            (c[mask].mean() - c[ring].mean()) / max(float(n[ring].std()), 1e-6)
            for c, n in zip(image, noise, strict=True)
        ],
        np.float32,
    )


def measure_case(
    images: np.ndarray,  # float32 [T, C, R, R] acquired
    masks: np.ndarray,  # bool [T, R, R] stored
    severity: np.ndarray,  # float32 [T]
    normal: np.ndarray,  # float32 [C, R, R] the patient without the finding, acquired
    *,
    clean: np.ndarray,  # float32 [T, C, R, R] the images before the scanner's noise
    anatomy: np.ndarray,  # float32 [A, R, R] the patient's anatomy maps
    lesion_maps: np.ndarray,  # float32 [T, L, m, m] the lesion model's maps drawn from
    cohort: str,
    finding: str,
    side: str,
    location: str,
    features: FeatureSpace,
    seen: np.ndarray | None,  # bool [T, R, R] the lesion read back from the images
    keep_small: bool = True,
) -> CaseRecord:
    """A case's record; without ``seen``, only what the training reference needs."""
    timepoints, channels = images.shape[:2]
    nan = np.full(timepoints, np.nan, np.float32)
    record = CaseRecord(
        finding=finding,
        severity=np.asarray(severity, np.float32),
        side=side,
        location=location,
        features=features.embed(images),
        small=area_down(images, SMALL).astype(np.float16) if keep_small else None,
        descriptor=area_down(normal, DESCRIPTOR).ravel().astype(np.float32),
        dice=nan,
        mask_clean=np.zeros(timepoints, bool),
        segmented_mm2=nan,
        seen_side="",
        seen_location="",
        identity_ssim=float("nan"),
        identity_ssim_acquired=float("nan"),
        cnr=np.full(channels, np.nan, np.float32),
    )
    if seen is None:
        return record
    simulator = SIMULATORS[cohort]
    pixel_mm = simulator.PIXEL_MM
    stored = masks.any(axis=(1, 2))
    body = simulator.body_mask(anatomy)
    record.dice = np.array(
        [dice(s, m) if any_ else np.nan for s, m, any_ in zip(seen, masks, stored, strict=True)],
        np.float32,
    )
    bodies = simulator.body_masks(anatomy, lesion_maps)
    clean_masks = [mask_is_clean(m, b) for m, b in zip(masks, bodies, strict=True)]
    record.mask_clean = np.array(clean_masks) & stored
    record.segmented_mm2 = seen.sum(axis=(1, 2)).astype(np.float32) * pixel_mm**2
    place = simulator.facts(seen[-1], anatomy)
    record.seen_side, record.seen_location = place.get("side", ""), place.get("location", "")
    if timepoints > 1:
        # Identity is the anatomy's: each acquisition draws its own noise, so between noisy
        # timepoints SSIM measures the noise (the simulation's own reads ~0.79).
        margin = round(IDENTITY_MARGIN_MM / pixel_mm)
        clean = np.asarray(clean, np.float32)
        record.identity_ssim = identity_ssim(clean, masks, body, margin)
        record.identity_ssim_acquired = identity_ssim(images, masks, body, margin)
    if stored[-1]:
        ring = round(RING_MM / pixel_mm)
        record.cnr = contrast_to_noise(images[-1], clean[-1], masks[-1], body, ring)
    return record


@dataclass(frozen=True)
class Subject:
    """Who to simulate: (cohort, seed, index) names a subject's own random stream."""

    cohort: str
    seed: int
    index: int
    finding: int  # index into the simulator's FINDINGS
    timepoints: int


def _simulate(subject: Subject) -> ScanTrack:
    simulator = SIMULATORS[subject.cohort]
    return simulator.subject_track(
        subject.seed, subject.index, subject.timepoints, finding=subject.finding
    )


def simulate(subjects: Sequence[Subject], workers: int) -> Iterable[ScanTrack]:
    """The subjects' tracks in order, simulated in ``workers`` processes as they are read
    (a few per worker ahead of the reader, so finished tracks do not pile up in memory)."""
    if workers <= 1:
        yield from map(_simulate, subjects)
        return
    context = multiprocessing.get_context("spawn")  # the parent has run torch: not fork-safe
    ahead = 2 * workers
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for start in range(0, len(subjects), ahead):
            yield from pool.map(_simulate, subjects[start : start + ahead])


def lesion_findings(cohort: str) -> tuple[str, ...]:
    return tuple(f for f in SIMULATORS[cohort].FINDINGS if f != "normal")


def _wanted(cohort: str, cases: int, timepoints: int) -> list[tuple[int, int, int]]:
    """(finding index, subjects, timepoints): ``cases`` series of each lesion finding and
    half as many normal subjects, one image each."""
    findings = SIMULATORS[cohort].FINDINGS
    lesions = [(findings.index(f), cases, timepoints) for f in lesion_findings(cohort)]
    return [*lesions, (findings.index("normal"), cases // 2, 1)]


def fresh_subjects(cohort: str, seed: int, cases: int, timepoints: int) -> list[Subject]:
    """``cases`` subjects of each lesion finding and half as many normal ones from the
    stream of ``seed``, numbered in that order."""
    subjects: list[Subject] = []
    for finding, wanted, length in _wanted(cohort, cases, timepoints):
        start = len(subjects)
        subjects += [Subject(cohort, seed, start + i, finding, length) for i in range(wanted)]
    return subjects


def training_subjects(recipe: LatentRecipe, cases: int, timepoints: int) -> list[Subject]:
    """Subjects of the recipe's own cohort that its train split holds, as many of each
    finding as :func:`fresh_subjects` or all the split has (the chest's 600 subjects hold
    160 of each finding; the evaluation records how many), rebuilt subject by subject:
    each has its own random stream."""
    pattern = SIMULATORS[recipe.cohort].FINDING_PATTERN
    finding = np.array([pattern[i % len(pattern)] for i in range(recipe.subjects)])
    held = split_by_track(
        np.arange(recipe.subjects), finding, fraction=HELD_OUT_FRACTION, seed=recipe.cohort_seed
    )
    chosen = []
    for value, wanted, length in _wanted(recipe.cohort, cases, timepoints):
        rows = np.flatnonzero((finding == value) & ~held)[:wanted]
        if wanted and not len(rows):
            raise ValueError(f"the {recipe.name} cohort's train split has no finding {value}")
        chosen += [Subject(recipe.cohort, recipe.cohort_seed, int(i), value, length) for i in rows]
    return chosen


def _counts(records: Sequence[CaseRecord]) -> str:
    found = [r.finding for r in records]
    return ", ".join(f"{found.count(f)} {f}" for f in dict.fromkeys(found))


def simulated_records(
    subjects: Sequence[Subject],
    *,
    features: FeatureSpace,
    model: LatentModel | None,
    workers: int,
    keep_small: bool = True,
) -> tuple[list[CaseRecord], list[dict]]:
    """Each subject's record (its lesion read back as ``model`` reads its own; without a
    model, only what the training reference needs), and the conditions a generated twin
    is asked for."""
    records, conditions = [], []
    for subject, track in zip(subjects, simulate(subjects, workers), strict=True):
        simulator = SIMULATORS[subject.cohort]
        rng = np.random.default_rng([subject.seed, subject.index, 1])
        finding = simulator.FINDINGS[track.finding]
        images = simulator.acquire(track.clean, track.noise, rng)
        clean = np.asarray(track.clean, np.float32)
        seen = None
        if model is not None:
            normal = np.asarray(track.normal, np.float32)
            seen = model.read(finding, images, clean, normal, track.noise)
        records.append(
            measure_case(
                images,
                track.masks,
                track.severity,
                simulator.acquire(track.normal, track.noise, rng),
                clean=clean,
                anatomy=track.anatomy,
                lesion_maps=track.lesion_maps,
                cohort=subject.cohort,
                finding=finding,
                side=track.side,
                location=track.location,
                features=features,
                seen=seen,
                keep_small=keep_small,
            )
        )
        conditions.append(
            {
                "finding": finding,
                "age": track.age,
                "sex": track.sex,
                "severities": [float(s) for s in track.severity],
            }
        )
    return records, conditions


def generated_records(
    model: LatentModel,
    conditions: Sequence[dict],
    *,
    features: FeatureSpace,
    seed: int,
) -> tuple[list[CaseRecord], list[bool]]:
    """One generated case per condition (z and plan from ``seed`` and its position), and
    whether each condition's case was made (False: no plan passed the image check)."""
    records, made_flags = [], []
    for i, wanted in enumerate(conditions):
        case_seed = seed * 100_000 + i
        try:
            made = model.series(z_from_seed(case_seed, 1, model.z_dim)[0], seed=case_seed, **wanted)
        except (CaseRejected, PlanningError):
            made_flags.append(False)
            continue
        made_flags.append(True)
        records.append(
            measure_case(
                made.images,
                made.masks,
                made.severity,
                made.normal,
                clean=made.clean,
                anatomy=made.anatomy,
                lesion_maps=made.lesion_maps,
                cohort=model.domain.cohort,
                finding=wanted["finding"],
                side=made.side,
                location=made.location,
                features=features,
                seen=made.seen,
            )
        )
    return records, made_flags


def yield_at(
    model: LatentModel, finding: str, severity: float, *, patients: int, seed: int
) -> dict[str, int]:
    """How reliably ``model`` draws ``finding`` at one ``severity``: of ``patients`` one-image
    cases (age 60, sexes alternating), how many were made and how many on their first plan."""
    counts = {"asked": patients, "made": 0, "first_plan": 0}
    for i in range(patients):
        case_seed = seed * 100_000 + i
        try:
            made = model.series(
                z_from_seed(case_seed, 1, model.z_dim)[0],
                age=60.0,
                sex="F" if i % 2 else "M",
                finding=finding,
                severities=[severity],
                seed=case_seed,
            )
        except (CaseRejected, PlanningError):
            continue
        counts["made"] += 1
        counts["first_plan"] += int(made.attempts == 1)
    return counts


START_BINS = tuple(np.round(np.arange(0.1, 1.0, 0.1), 1))  # edges: yield by starting severity


def _start_bin(severities: Sequence[float]) -> str:
    start = min((s for s in severities if s > 0), default=0.0)
    lower = max((edge for edge in START_BINS if edge <= start), default=0.0)
    upper = min((edge for edge in START_BINS if edge > start), default=1.0)
    return f"{lower:.2f}-{upper:.2f}"


def yield_by_start(conditions: Sequence[dict], made: Sequence[bool]) -> dict[str, dict]:
    """Per lesion finding, per bin of the severity a case starts at (its smallest above
    zero): {"made": cases made, "asked": cases asked}. Where a model fails cases, this says
    which: a small first lesion drawn too faint for the image check, or any."""
    table: dict[str, dict] = {}
    for wanted, kept in zip(conditions, made, strict=True):
        if max(wanted["severities"]) <= 0:
            continue
        counts = table.setdefault(wanted["finding"], {}).setdefault(
            _start_bin(wanted["severities"]), {"made": 0, "asked": 0}
        )
        counts["asked"] += 1
        counts["made"] += int(kept)
    return {finding: dict(sorted(bins.items())) for finding, bins in table.items()}


# --- figures of one evaluation seed -----------------------------------------------------------


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a positive outscores a negative (ties
    count half), by the Mann-Whitney rank sum."""
    labels = np.asarray(labels, bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("the AUC needs both classes")
    ranks = scipy.stats.rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


class TwoSampleClassifier(nn.Module):
    """A small CNN that tells generated [n, C, SMALL, SMALL] images from simulated ones."""

    def __init__(self, channels: int, width: int = 16) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width, 4 * width)
        layers: list[nn.Module] = []
        for w in widths:
            layers += [nn.Conv2d(channels, w, 3, stride=2, padding=1), nn.SiLU()]
            channels = w
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [n, C, H, W] -> [n] logits
        return self.head(self.trunk(x * 2 - 1).mean(dim=(2, 3)))[:, 0]


def classifier_auc(
    generated: Sequence[np.ndarray],  # per case float16 [T, C, S, S]
    simulated: Sequence[np.ndarray],
    *,
    seed: int,
    epochs: int = CLASSIFIER_EPOCHS,
    batch_size: int = 32,
) -> float:
    """Held-out AUC of a classifier trained on half of each set's cases (split by case, so
    no patient is on both sides) and tested on the other half."""
    rng = np.random.default_rng([seed, 29])
    torch.manual_seed(seed)

    def halves(cases: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        order = rng.permutation(len(cases))
        cut = len(cases) // 2
        return tuple(np.concatenate([cases[i] for i in p]) for p in (order[:cut], order[cut:]))

    (g_train, g_test), (s_train, s_test) = halves(generated), halves(simulated)
    if min(len(g_train), len(g_test), len(s_train), len(s_test)) == 0:
        raise ValueError("the two-sample test needs at least two cases of each set")
    images = np.concatenate([g_train, s_train])
    labels = np.concatenate([np.ones(len(g_train)), np.zeros(len(s_train))]).astype(np.float32)
    net = TwoSampleClassifier(images.shape[1])
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(-(-epochs * len(images) // batch_size)):
        rows = rng.integers(len(images), size=batch_size)
        logits = net(torch.from_numpy(images[rows].astype(np.float32)))
        loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(labels[rows]))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    test = np.concatenate([g_test, s_test])
    with torch.no_grad():
        scores = np.concatenate(
            [
                net(torch.from_numpy(test[i : i + 64].astype(np.float32))).numpy()
                for i in range(0, len(test), 64)
            ]
        )
    return auc(scores, np.r_[np.ones(len(g_test)), np.zeros(len(s_test))].astype(bool))


def _lesion(records: Sequence[CaseRecord]) -> list[CaseRecord]:
    return [r for r in records if r.has_lesion]


def _mean(values: Iterable[float]) -> float | None:
    found = np.array([v for v in values if np.isfinite(v)], np.float64)
    return float(found.mean()) if len(found) else None


def progression(records: Sequence[CaseRecord], max_area_mm2: float) -> dict[str, float | None]:
    """Spearman of segmented lesion area vs stored severity over every timepoint of the
    lesion series, and the share of series whose area never falls (beyond tolerance) and
    grows from first to last."""
    series = [r for r in _lesion(records) if len(r.severity) > 1]
    if not series:
        return {"spearman": None, "monotone_share": None}
    found = metrics.controllability(
        np.stack([r.severity for r in series]),
        np.stack([r.segmented_mm2 / max_area_mm2 for r in series]),
        tolerance=MONOTONE_TOLERANCE,
    )
    return {"spearman": found["spearman"], "monotone_share": found["monotone_fraction"]}


def placement_test(
    generated: Sequence[CaseRecord], simulated: Sequence[CaseRecord], attribute: str
) -> float | None:
    """χ² test p-value of where the segmenter sees lesions (``seen_side`` or
    ``seen_location``), generated vs simulated; None when only one category occurs."""
    values = [[getattr(r, attribute) or "none" for r in _lesion(s)] for s in (generated, simulated)]
    categories = sorted(set(values[0]) | set(values[1]))
    if len(categories) < 2 or not values[0] or not values[1]:
        return None
    table = np.array([[v.count(c) for c in categories] for v in values])
    return float(scipy.stats.chi2_contingency(table).pvalue)


def _left_share(records: Sequence[CaseRecord]) -> float | None:
    seen = [r.seen_side for r in _lesion(records) if r.seen_side]
    return float(np.mean([s == "left" for s in seen])) if seen else None


def set_figures(
    records: Sequence[CaseRecord], max_area_mm2: float, channels: Sequence[str]
) -> dict[str, float | None]:
    """The figures of one finding's cases: the same for the generated and the simulated
    set."""
    lesion = _lesion(records)
    stored = [r.dice[np.isfinite(r.dice)] for r in lesion]
    clean = [r.mask_clean[np.isfinite(r.dice)] for r in lesion]
    cnr = np.array([r.cnr for r in lesion if np.isfinite(r.cnr).all()])
    figures = {
        "dice": _mean(np.concatenate(stored)) if stored else None,
        "mask_clean_share": _mean(np.concatenate(clean).astype(float)) if clean else None,
        "left_share": _left_share(records),
        "side_agreement": _mean(float(r.seen_side == r.side) for r in lesion),
        **progression(records, max_area_mm2),
        "identity_ssim": _mean(r.identity_ssim for r in lesion),
        "identity_ssim_acquired": _mean(r.identity_ssim_acquired for r in lesion),
    }
    for c, channel in enumerate(channels):
        figures[f"cnr_{channel}"] = float(cnr[:, c].mean()) if len(cnr) else None
    return figures


def finding_figures(
    generated: Sequence[CaseRecord],
    simulated: Sequence[CaseRecord],
    *,
    channels: Sequence[str],
    max_area_mm2: float,
) -> dict[str, float | None]:
    """One finding's figures, generated and (``<figure>_simulation``) simulated, with the
    ratios and tests between them."""
    ours, theirs = (set_figures(s, max_area_mm2, channels) for s in (generated, simulated))
    figures: dict[str, float | None] = {}
    for key, value in ours.items():
        figures[key] = value
        figures[f"{key}_simulation"] = theirs[key]
    for c in channels:
        ours_cnr, theirs_cnr = figures.get(f"cnr_{c}"), figures.get(f"cnr_{c}_simulation")
        ratio = ours_cnr / theirs_cnr if ours_cnr is not None and theirs_cnr else None
        figures[f"cnr_ratio_{c}"] = ratio
    cnr_ratios = [figures[f"cnr_ratio_{c}"] for c in channels]
    cnr_ratios = [ratio for ratio in cnr_ratios if ratio is not None]
    figures["cnr_ratio_min"] = min(cnr_ratios) if cnr_ratios else None
    left, left_simulated = figures["left_share"], figures["left_share_simulation"]
    figures["side_share_gap"] = (
        None if left is None or left_simulated is None else abs(left - left_simulated)
    )
    figures["side_chi2_p"] = placement_test(generated, simulated, "seen_side")
    figures["location_chi2_p"] = placement_test(generated, simulated, "seen_location")
    return figures


def seed_figures(
    generated: Sequence[CaseRecord],
    simulated: Sequence[CaseRecord],
    reference: Sequence[CaseRecord],
    *,
    seed: int,
    channels: Sequence[str],
    findings: Sequence[str],
    classifier_epochs: int = CLASSIFIER_EPOCHS,
) -> dict[str, float | None]:
    """Every figure at one evaluation seed: each finding's figures on bootstrap resamples of
    this seed's generated cases and of the simulated ones, the set figures on the whole
    sets, and a two-sample classifier of this seed.

    A resample repeats cases, and repeats add to a Fréchet distance the more, the smaller it
    is: on the chest's sets they raised the training reference's distance (the ratio's
    denominator) two to four times and the generated set's hardly, so a resampled ratio was
    on average two fifths of the whole sets'. A resampled training set also drops about a
    third of the patients a generated one could copy."""
    rng = np.random.default_rng([seed, 3])

    def resample(records: Sequence[CaseRecord]) -> list[CaseRecord]:
        return [records[i] for i in rng.integers(len(records), size=len(records))]

    gen, sim = resample(generated), resample(simulated)
    figures: dict[str, float | None] = {}
    for finding in findings:
        found = finding_figures(
            [r for r in gen if r.finding == finding],
            [r for r in sim if r.finding == finding],
            channels=channels,
            max_area_mm2=LESION_AREA_MM2[finding],
        )
        figures.update({f"{finding}.{key}": value for key, value in found.items()})
    figures.update(distribution(generated, simulated, reference))
    figures.update(memorisation(generated, simulated, reference))
    figures["c2st_auc"] = classifier_auc(
        [r.small for r in generated], [r.small for r in simulated], seed=seed,
        epochs=classifier_epochs,
    )  # fmt: skip
    return figures


def distribution(
    generated: Sequence[CaseRecord],
    simulated: Sequence[CaseRecord],
    reference: Sequence[CaseRecord],
) -> dict[str, float | None]:
    """Fréchet distance of every image's features: generated vs held-out simulation, and the
    training reference vs the same held-out simulation; then the same within each finding
    (``<finding>.fd``, ...), which says where a model's distance lies: a finding whose
    cases are made on other patients than the simulation's shows there, not in the whole
    set's figure."""
    figures = _frechet(generated, simulated, reference)
    for finding in dict.fromkeys(r.finding for r in simulated):
        sets = [
            [r for r in records if r.finding == finding]
            for records in (generated, simulated, reference)
        ]
        if all(sum(len(r.features) for r in found) >= 2 for found in sets):
            figures.update({f"{finding}.{k}": v for k, v in _frechet(*sets).items()})
    return figures


def _frechet(
    generated: Sequence[CaseRecord],
    simulated: Sequence[CaseRecord],
    reference: Sequence[CaseRecord],
) -> dict[str, float | None]:
    gen, sim, ref = (
        np.concatenate([r.features for r in records])
        for records in (generated, simulated, reference)
    )
    fd = metrics.frechet_distance(gen, sim)
    fd_reference = metrics.frechet_distance(ref, sim)
    return {
        "fd": fd,
        "fd_reference": fd_reference,
        "fd_ratio": fd / fd_reference if fd_reference > 0 else None,
    }


def memorisation(
    generated: Sequence[CaseRecord],
    simulated: Sequence[CaseRecord],
    reference: Sequence[CaseRecord],
) -> dict[str, float]:
    """Each patient's normal image against its nearest training image: the generated
    patients' median distance over the held-out patients', and the share of generated
    patients nearer than all but 1% of the held-out ones."""
    training = np.stack([r.descriptor for r in reference])
    _, ours = metrics.nearest_neighbours(np.stack([r.descriptor for r in generated]), training)
    _, theirs = metrics.nearest_neighbours(np.stack([r.descriptor for r in simulated]), training)
    return {
        "nearest_training_ratio": float(np.median(ours) / max(np.median(theirs), 1e-12)),
        "nearer_than_held_out_share": float(np.mean(ours <= np.quantile(theirs, 0.01))),
    }


def combine(by_seed: Sequence[dict[str, float | None]]) -> dict[str, dict]:
    """Mean and sd (over the seeds that gave a value) of every figure, and each seed's; an
    undefined figure (None, or NaN such as the Spearman of a constant) counts as none."""
    out = {}
    for key in dict.fromkeys(key for figures in by_seed for key in figures):
        values = [figures.get(key) for figures in by_seed]
        values = [None if v is None or not np.isfinite(v) else float(v) for v in values]
        found = np.array([v for v in values if v is not None], np.float64)
        out[key] = {
            "mean": float(found.mean()) if len(found) else None,
            "sd": float(found.std(ddof=1)) if len(found) > 1 else None,
            "by_seed": values,
        }
    return out


def check_targets(figures: dict[str, dict], findings: Sequence[str]) -> list[dict]:
    """Each target (of every finding, then of the set) with the measured mean and whether it
    is met (None: not measured)."""
    targets = [(f"{f}.{name}", *rest) for f in findings for name, *rest in FINDING_TARGETS]
    rows = []
    for name, sign, bound in [*targets, *SET_TARGETS]:
        value = figures.get(name, {}).get("mean")
        met = None if value is None else (value >= bound if sign == ">=" else value <= bound)
        rows.append({"figure": name, "target": f"{sign} {bound:g}", "value": value, "met": met})
    return rows


def evaluate(
    model: LatentModel,
    recipe: LatentRecipe,
    features: FeatureSpace,
    *,
    cases: int = 200,
    seeds: Sequence[int] = tuple(range(5)),
    timepoints: int = TIMEPOINTS,
    workers: int = 2,
    log: Callable[[str], None] = lambda _: None,
) -> dict:
    """Every figure of ``model`` as mean ± sd over ``seeds`` (see the module's docstring)."""
    if EVALUATION_SEED in (recipe.cohort_seed, recipe.normals_seed):
        raise ValueError(f"the recipe trains on the evaluation's seed {EVALUATION_SEED}")
    if cases < 2:
        raise ValueError("evaluate at least 2 cases")
    started, seconds = time.perf_counter(), {}
    held_out, conditions = simulated_records(
        fresh_subjects(recipe.cohort, EVALUATION_SEED, cases, timepoints),
        features=features,
        model=model,
        workers=workers,
    )
    seconds["held_out_simulation"] = time.perf_counter() - started
    log(f"held-out simulation: {len(held_out)} cases, {seconds['held_out_simulation']:.0f} s")
    reference, _ = simulated_records(
        training_subjects(recipe, cases, timepoints),
        features=features,
        model=None,
        workers=workers,
        keep_small=False,
    )
    seconds["training_reference"] = time.perf_counter() - started - sum(seconds.values())
    log(f"training reference: {len(reference)} cases, {seconds['training_reference']:.0f} s")
    findings = lesion_findings(recipe.cohort)
    rejections, by_seed, made = model.rejections, [], []
    lesion_series: Counter[str] = Counter()
    for seed in seeds:
        started_seed = time.perf_counter()
        generated, made_now = generated_records(model, conditions, features=features, seed=seed)
        made += made_now
        log(
            f"seed {seed}: generated {len(generated)} cases ({made_now.count(False)} failed), "
            f"{time.perf_counter() - started_seed:.0f} s"
        )
        if len(generated) < 2:
            raise ValueError(f"the model made only {len(generated)} of {len(conditions)} cases")
        by_seed.append(
            seed_figures(
                generated,
                held_out,
                reference,
                seed=seed,
                channels=model.domain.channels,
                findings=findings,
            )
        )
        lesion_series.update(record.finding for record in generated)
    seconds["generation_and_figures"] = time.perf_counter() - started - sum(seconds.values())
    figures = combine(by_seed)
    return {
        "figures": figures,
        "targets": check_targets(figures, findings),
        "findings": list(findings),
        "cases": {
            "generations": len(seeds),
            "asked": len(made),
            "generated": made.count(True),
            "failed": made.count(False),
            "plans_rejected": model.rejections - rejections,
            "lesion_series": {f: lesion_series[f] for f in findings},
            "made_by_start": yield_by_start(list(conditions) * len(seeds), made),
            "timepoints": timepoints,
            "held_out_seed": EVALUATION_SEED,
            "training_reference": f"{len(reference)} train-split subjects "
            f"({_counts(reference)}) of cohort seed {recipe.cohort_seed}",
        },
        "seeds": list(seeds),
        "seconds": {key: round(value, 1) for key, value in seconds.items()},
    }
