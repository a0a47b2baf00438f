"""A toy cohort for generator tests: a grey ellipse "body" with a bright disc "lesion"
(and, on request, a second finding: a dark disc "cyst").

Each track is one subject (body size, position and lesion centre fixed) seen at several
severities; the lesion's radius grows linearly with severity, so lesion area is a
simple, exact severity read-out for generated images.
"""

from __future__ import annotations

import numpy as np

from genworker.cohorts import Cohort

FINDINGS = ("normal", "lesion")
TWO_FINDINGS = ("normal", "lesion", "cyst")
BODY, LESION, CYST = 0.4, 1.0, 0.1  # intensities; background is 0
BRIGHT = 0.7  # pixels brighter than this (in [0, 1]) are lesion


def lesion_radius(severity: np.ndarray, resolution: int) -> np.ndarray:
    """Radius in pixels: from 1/16 of the image side at severity 0 to 5/16 at 1."""
    return resolution * (1 + 4 * np.asarray(severity)) / 16


def lesion_area(images: np.ndarray) -> np.ndarray:
    """Bright pixels per image of images [n, R, R] in [0, 1]."""
    return (images > BRIGHT).sum(axis=(1, 2))


def disc_cohort(
    *,
    resolution: int = 16,
    n_tracks: int = 48,
    severities_per_track: int = 5,
    seed: int = 0,
    findings: tuple[str, ...] = FINDINGS,
) -> Cohort:
    """Every fourth track normal; the others take ``findings[1:]`` in turn, eight tracks
    at a time (so the held-out tracks, every eighth, show each finding too)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:resolution, 0:resolution] + 0.5
    images, masks, finding, severity, age, sex, track = [], [], [], [], [], [], []
    for t in range(n_tracks):
        half_axes = resolution * rng.uniform(0.3, 0.45, 2)
        body = ((yy - resolution / 2) / half_axes[0]) ** 2 + (
            (xx - resolution / 2) / half_axes[1]
        ) ** 2 < 1
        centre = resolution / 2 + rng.uniform(-1, 1, 2) * resolution / 16
        subject_age, subject_sex = rng.uniform(30, 70), rng.integers(0, 2)
        is_normal = t % 4 == 0
        finding_index = 0 if is_normal else 1 + (t // 8) % (len(findings) - 1)
        value = (LESION, CYST)[finding_index - 1] if finding_index else 0.0
        for s in np.zeros(1) if is_normal else np.linspace(0, 1, severities_per_track):
            radius = lesion_radius(s, resolution)
            lesion = np.hypot(yy - centre[0], xx - centre[1]) < radius
            lesion = lesion & ~is_normal
            image = np.where(lesion, value, np.where(body, BODY, 0.0))
            images.append(image + rng.normal(0, 0.02, image.shape))
            masks.append(lesion)
            finding.append(finding_index)
            severity.append(s)
            age.append(subject_age)
            sex.append(subject_sex)
            track.append(t)
    track = np.asarray(track)
    return Cohort(
        name="toy-discs",
        findings=findings,
        images=np.clip(np.asarray(images), 0, 1).astype(np.float32),
        masks=np.asarray(masks),
        finding=np.asarray(finding, dtype=np.int64),
        severity=np.asarray(severity, dtype=np.float32),
        age=np.asarray(age, dtype=np.float32),
        sex=np.asarray(sex, dtype=np.int8),
        track=track,
        held_out=track % 8 == 7,
        seed=seed,
        modality="MR",
        provenance={"source": "toy discs drawn in tests", "licence": "CC0-1.0"},
    )
