"""Longitudinal tracks and the train/held-out split, shared by simulators and importers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genworker.cohorts import Cohort

HELD_OUT_FRACTION = 0.2
SPLIT_STREAM = 7_777  # keeps the split's random stream apart from the subjects' streams


@dataclass
class Track:
    """One subject imaged at T timepoints (the same anatomy, severity rising)."""

    finding: int  # index into the cohort's findings
    images: np.ndarray  # float32 [T, R, R] in [0, 1]
    masks: np.ndarray  # bool [T, R, R]
    severity: np.ndarray  # float32 [T], non-decreasing
    age: float
    sex: int  # 0 = F, 1 = M
    region: np.ndarray  # bool [R, R]: where this subject's lesions may lie (brain; lungs)


def split_by_track(
    track: np.ndarray, finding: np.ndarray, *, fraction: float, seed: int
) -> np.ndarray:
    """held_out bool [N]: whole tracks held out, about ``fraction`` of the tracks per finding.

    Tracks are stratified by their most advanced finding index so every finding
    with at least two tracks has at least one in each part.
    """
    track_ids = np.unique(track)
    stratum = np.array([finding[track == t].max() for t in track_ids])
    rng = np.random.default_rng([seed, SPLIT_STREAM])
    held_tracks: list[np.ndarray] = []
    for value in np.unique(stratum):
        members = rng.permutation(track_ids[stratum == value])
        if len(members) < 2:
            continue
        n_held = min(max(1, round(fraction * len(members))), len(members) - 1)
        held_tracks.append(members[:n_held])
    held = np.concatenate(held_tracks) if held_tracks else np.array([], dtype=track.dtype)
    return np.isin(track, held)


def assemble_cohort(
    name: str,
    findings: Sequence[str],
    tracks: Sequence[Track],
    *,
    seed: int,
    modality: str,
    provenance: dict,
    held_out_fraction: float = HELD_OUT_FRACTION,
) -> Cohort:
    """Stack tracks into a cohort (track id = position in ``tracks``) and split it."""
    lengths = [len(t.severity) for t in tracks]
    track = np.repeat(np.arange(len(tracks), dtype=np.int64), lengths)
    finding = np.repeat(np.array([t.finding for t in tracks], dtype=np.int64), lengths)
    return Cohort(
        name=name,
        findings=tuple(findings),
        images=np.concatenate([t.images for t in tracks]).astype(np.float32),
        masks=np.concatenate([t.masks for t in tracks]).astype(bool),
        finding=finding,
        severity=np.concatenate([t.severity for t in tracks]).astype(np.float32),
        age=np.repeat(np.array([t.age for t in tracks], dtype=np.float32), lengths),
        sex=np.repeat(np.array([t.sex for t in tracks], dtype=np.int8), lengths),
        track=track,
        held_out=split_by_track(track, finding, fraction=held_out_fraction, seed=seed),
        seed=seed,
        modality=modality,
        provenance=provenance,
    )


def severity_schedule(
    rng: np.random.Generator, timepoints: int, *, first: tuple[float, float], last: float = 1.0
) -> np.ndarray:
    """Rising target severities [T]: from U(first) to ``last`` with jittered inner spacing."""
    start = rng.uniform(*first)
    if timepoints == 1:
        return np.array([rng.uniform(start, last)], dtype=np.float32)
    grid = np.linspace(start, last, timepoints)
    step = (last - start) / (timepoints - 1)
    grid[1:-1] += rng.uniform(-0.3, 0.3, timepoints - 2) * step
    return grid.astype(np.float32)
