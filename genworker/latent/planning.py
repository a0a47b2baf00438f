"""Planning a finding on a generated patient's anatomy, with the simulators' own models.

The decoder draws each patient's anatomy maps (brain tissue shares; lungs) beside the
image. A plan places the lesion where the template asks (side and location), grows it to
each timepoint's severity with the same model the training cohort was simulated with, and
returns the renderer's input maps and the exact masks. The masks are the case's ground
truth; nothing about them is learned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genworker.cohorts import brain_mri, glioma

# Where each domain's planner can put each finding: (sides, locations).
PLACEMENTS = {
    brain_mri.NAME: {"glioma": (glioma.SIDES, glioma.LOCATIONS)},
}


class PlanningError(ValueError):
    """The anatomy has no place for the lesion asked for (e.g. no deep white matter there)."""


@dataclass(frozen=True)
class Plan:
    finding: str
    side: str
    location: str
    severity: np.ndarray  # float32 [T] reached (may fall short of the request if growth stalls)
    maps: np.ndarray  # float32 [T, M, m, m] the renderer's input
    masks: np.ndarray  # bool [T, R, R]


def _no_lesion(finding: str, timepoints: int, map_channels: int, size: int) -> Plan:
    small = brain_mri.LESION_MAP_SIZE
    return Plan(
        finding=finding,
        side="",
        location="",
        severity=np.zeros(timepoints, np.float32),
        maps=np.zeros((timepoints, map_channels, small, small), np.float32),
        masks=np.zeros((timepoints, size, size), bool),
    )


def plan_brain(
    anatomy: np.ndarray,  # float32 [3, R, R] csf, gm, wm shares drawn by the decoder
    finding: str,
    severities: Sequence[float],
    rng: np.random.Generator,
    *,
    side: str | None = None,
    location: str | None = None,
) -> Plan:
    """A glioma grown in the requested (or a random) hemisphere and lobe; "normal": none."""
    timepoints = len(severities)
    if finding == "normal" or max(severities) <= 0:
        return _no_lesion(finding, timepoints, 7, anatomy.shape[-1])
    if finding != "glioma":
        raise PlanningError(f"the brain model plans gliomas, not {finding!r}")
    tissue = np.clip(anatomy, 0, 1)
    targets = np.maximum(np.asarray(severities, np.float32), 0.01)
    sides = [side] if side else list(rng.permutation(glioma.SIDES))
    locations = [location] if location else list(rng.permutation(glioma.LOCATIONS))
    for chosen_side in sides:
        for chosen_location in locations:
            grown = brain_mri.grow_tumour(tissue, rng, targets, chosen_side, chosen_location)
            if grown is not None:
                return _brain_timepoints(tissue, grown, chosen_side, chosen_location, rng)
    raise PlanningError(
        f"no deep white matter in the {side or 'either'} {location or 'any'} region of this "
        "patient to seed a glioma in"
    )


def _brain_timepoints(
    tissue: np.ndarray,
    grown: tuple[np.ndarray, np.ndarray],
    side: str,
    location: str,
    rng: np.random.Generator,
) -> Plan:
    densities, severity = grown
    uneven = glioma.heterogeneity(rng, tissue.shape[1:], brain_mri.PIXEL_MM)
    maps, masks = [], []
    for u, s in zip(densities, severity, strict=True):
        _, parts, grid = brain_mri.tumour_timepoint(tissue, u, uneven, float(s))
        maps.append(brain_mri.lesion_maps(parts, grid))
        masks.append(parts.tumour > 0.5)
    return Plan("glioma", side, location, severity, np.stack(maps), np.stack(masks))
