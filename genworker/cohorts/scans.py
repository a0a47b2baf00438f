"""Multi-channel simulated scans: what the latent generators learn from and are judged by.

A :class:`ScanTrack` is one simulated subject scanned at several timepoints. Beside the
noise-free images (what a generator learns) it keeps what the engine needs to learn each
stage: the same subject without the finding (``normal``), the anatomy maps a lesion is
planned on (brain tissue shares; lungs), and the lesion model's maps at each timepoint.
Acquisition noise is added by the simulator's ``acquire`` when images are compared with
generated ones, so the noise-free and the acquired image both exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from genworker.cohorts.tracks import HELD_OUT_FRACTION, split_by_track


@dataclass
class ScanTrack:
    finding: int
    clean: np.ndarray  # float32 [T, C, R, R] noise-free images in [0, 1]
    masks: np.ndarray  # bool [T, R, R]
    severity: np.ndarray  # float32 [T], non-decreasing
    age: float
    sex: int  # 0 = F, 1 = M
    side: str  # the patient's "right" / "left"; "" without a lesion
    location: str  # lobe or lung zone; "" without a lesion
    normal: np.ndarray  # float32 [C, R, R]: the same subject without the finding
    anatomy: np.ndarray  # float32 [A, R, R]: the maps a lesion is planned on
    lesion_maps: np.ndarray  # float32 [T, L, m, m]: the lesion model's maps, small
    noise: np.ndarray  # float32 [C]: the subject's acquisition noise level per channel
    source: str  # the real anatomy the subject was built on


@dataclass
class ScanCohort:
    """Row i of the per-image arrays describes image i; per-track arrays are indexed by
    ``track``. Images are stored as float16 (noise-free renders: no detail is lost)."""

    name: str
    findings: tuple[str, ...]
    channels: tuple[str, ...]
    modality: str
    pixel_mm: float
    seed: int
    clean: np.ndarray  # float16 [N, C, R, R]
    masks: np.ndarray  # bool [N, R, R]
    finding: np.ndarray  # int64 [N]
    severity: np.ndarray  # float32 [N]
    age: np.ndarray  # float32 [N]
    sex: np.ndarray  # int8 [N]
    side: np.ndarray  # str [N]
    location: np.ndarray  # str [N]
    track: np.ndarray  # int64 [N]
    held_out: np.ndarray  # bool [N]
    lesion_maps: np.ndarray  # float16 [N, L, m, m]
    normal: np.ndarray  # float16 [K, C, R, R] per track
    anatomy: np.ndarray  # float16 [K, A, R, R] per track
    noise: np.ndarray  # float32 [K, C] per track
    sources: np.ndarray  # str [K] per track
    provenance: dict = field(default_factory=dict)

    @property
    def resolution(self) -> int:
        return int(self.clean.shape[-1])

    def __len__(self) -> int:
        return len(self.clean)


def assemble_scans(
    name: str,
    findings: Sequence[str],
    channels: Sequence[str],
    tracks: Sequence[ScanTrack],
    *,
    seed: int,
    modality: str,
    pixel_mm: float,
    provenance: dict,
    held_out_fraction: float = HELD_OUT_FRACTION,
) -> ScanCohort:
    """Stack tracks (track id = position) and hold out whole tracks per finding."""
    lengths = [len(t.severity) for t in tracks]
    track = np.repeat(np.arange(len(tracks), dtype=np.int64), lengths)
    finding = np.repeat(np.array([t.finding for t in tracks], dtype=np.int64), lengths)

    def per_image(values: list, dtype: object) -> np.ndarray:
        return np.repeat(np.array(values, dtype=dtype), lengths)

    return ScanCohort(
        name=name,
        findings=tuple(findings),
        channels=tuple(channels),
        modality=modality,
        pixel_mm=pixel_mm,
        seed=seed,
        clean=np.concatenate([t.clean for t in tracks]).astype(np.float16),
        masks=np.concatenate([t.masks for t in tracks]).astype(bool),
        finding=finding,
        severity=np.concatenate([t.severity for t in tracks]).astype(np.float32),
        age=per_image([t.age for t in tracks], np.float32),
        sex=per_image([t.sex for t in tracks], np.int8),
        side=per_image([t.side for t in tracks], object).astype(str),
        location=per_image([t.location for t in tracks], object).astype(str),
        track=track,
        held_out=split_by_track(track, finding, fraction=held_out_fraction, seed=seed),
        lesion_maps=np.concatenate([t.lesion_maps for t in tracks]).astype(np.float16),
        normal=np.stack([t.normal for t in tracks]).astype(np.float16),
        anatomy=np.stack([t.anatomy for t in tracks]).astype(np.float16),
        noise=np.stack([t.noise for t in tracks]).astype(np.float32),
        sources=np.array([t.source for t in tracks], dtype=object).astype(str),
        provenance=provenance,
    )


def simulate_in_parallel(
    simulate: Callable[[int, int, int], ScanTrack],  # (seed, index, timepoints) -> track
    n_subjects: int,
    seed: int,
    timepoints: int,
    workers: int,
) -> list[ScanTrack]:
    """Tracks 0..n-1 in order, from ``workers`` processes (each track has its own stream,
    so the result does not depend on how they are shared out)."""
    if workers <= 1:
        return [simulate(seed, i, timepoints) for i in range(n_subjects)]
    with ProcessPoolExecutor(workers) as pool:
        return list(
            pool.map(simulate, [seed] * n_subjects, range(n_subjects), [timepoints] * n_subjects)
        )


def longest_diameter(mask: np.ndarray) -> float:
    """Longest distance between two pixel centres of ``mask`` (pixels), plus one pixel."""
    edge = mask & ~ndimage.binary_erosion(mask)
    points = np.argwhere(edge).astype(np.float32)
    if len(points) == 0:
        return 0.0
    if len(points) > 600:  # the farthest pair lies on the hull; a thinned edge finds it
        points = points[:: len(points) // 600 + 1]
    gaps = points[:, None, :] - points[None, :, :]
    return float(np.sqrt((gaps**2).sum(-1)).max()) + 1.0


def lesion_facts(mask: np.ndarray, pixel_mm: float) -> dict:
    """What a case stores of its lesion mask [R, R]; {} for an empty mask."""
    if not mask.any():
        return {}
    _, components = ndimage.label(mask)
    rows, cols = np.nonzero(mask)
    touches = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    return {
        "centroid": (float(rows.mean()), float(cols.mean())),
        "area_mm2": float(mask.sum() * pixel_mm**2),
        "longest_diameter_mm": longest_diameter(mask) * pixel_mm,
        "components": int(components),
        "touches_border": touches,
    }


SCAN_ARRAYS = (
    "clean", "masks", "finding", "severity", "age", "sex", "side", "location", "track",
    "held_out", "lesion_maps", "normal", "anatomy", "noise", "sources",
)  # fmt: skip


def save_scans(cohort: ScanCohort, folder: Path) -> None:
    """``folder/scans.npz`` (uncompressed: it is read often) and ``manifest.json``, last."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "scans.npz", **{name: getattr(cohort, name) for name in SCAN_ARRAYS})
    manifest = {
        "format": "gantry-scans/1",
        "name": cohort.name,
        "findings": list(cohort.findings),
        "channels": list(cohort.channels),
        "modality": cohort.modality,
        "pixel_mm": cohort.pixel_mm,
        "seed": cohort.seed,
        "provenance": cohort.provenance,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def load_scans(folder: Path) -> ScanCohort:
    manifest = json.loads((folder / "manifest.json").read_text())
    with np.load(folder / "scans.npz") as arrays:
        loaded = {name: arrays[name] for name in SCAN_ARRAYS}
    return ScanCohort(
        name=manifest["name"],
        findings=tuple(manifest["findings"]),
        channels=tuple(manifest["channels"]),
        modality=manifest["modality"],
        pixel_mm=float(manifest["pixel_mm"]),
        seed=int(manifest["seed"]),
        provenance=manifest["provenance"],
        **loaded,
    )
