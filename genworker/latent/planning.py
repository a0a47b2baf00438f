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
from genworker.cohorts import chest_radiograph as chest

# Where each domain's planner can put each finding: (sides, locations).
PLACEMENTS = {
    brain_mri.NAME: {"glioma": (glioma.SIDES, glioma.LOCATIONS)},
    chest.NAME: {"nodule": (chest.SIDES, chest.ZONES), "effusion": (chest.SIDES, ("lower",))},
}
BRAIN_MAP_CHANNELS = 7  # brain_mri.lesion_maps: tumour compartments, texture, displacement


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


def _none_at_zero(plan: Plan, severities: Sequence[float]) -> Plan:
    """A timepoint asked for at severity 0 shows no lesion: the lesion models start every
    lesion from a seed of a few millimetres, which is not what "none yet" means."""
    zero = np.asarray(severities, np.float32) <= 0
    plan.maps[zero] = 0
    plan.masks[zero] = False
    plan.severity[zero] = 0
    return plan


def _no_lesion(finding: str, timepoints: int, map_channels: int, size: int) -> Plan:
    small = brain_mri.LESION_MAP_SIZE  # the chest's maps have the same size
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
        return _no_lesion(finding, timepoints, BRAIN_MAP_CHANNELS, anatomy.shape[-1])
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
                plan = _brain_timepoints(tissue, grown, chosen_side, chosen_location, rng)
                return _none_at_zero(plan, severities)
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


def plan_chest(
    anatomy: np.ndarray,  # float32 [3, R, R] right lung, left lung, body thickness (dm)
    finding: str,
    severities: Sequence[float],
    rng: np.random.Generator,
    *,
    side: str | None = None,
    location: str | None = None,
) -> Plan:
    """A nodule grown in the requested (or a random) lung and zone, or pleural fluid
    gathering in the requested (or a random) hemithorax; "normal": none."""
    timepoints = len(severities)
    if finding == "normal" or max(severities) <= 0:
        return _no_lesion(finding, timepoints, 1, anatomy.shape[-1])
    if finding not in PLACEMENTS[chest.NAME]:
        raise PlanningError(f"the chest model plans nodules and effusions, not {finding!r}")
    thickness = without_stray_lung(np.clip(anatomy, 0, None))
    try:
        chest.lung_axes(thickness)
    except ValueError as error:  # a drawn patient whose lungs did not come out
        raise PlanningError(f"{error}: no lung to place the {finding} in") from error
    targets = np.asarray(severities, np.float32)
    sides = [side] if side else list(rng.permutation(chest.SIDES))
    if finding == "nodule":
        zones = [location] if location else list(rng.permutation(chest.ZONES))
        return _none_at_zero(_chest_nodule(thickness, targets, sides, zones, rng), targets)
    if location not in (None, "", "lower"):
        raise PlanningError("pleural fluid gathers at the lung base: its location is 'lower'")
    return _none_at_zero(_chest_effusion(thickness, targets, sides, rng), targets)


def without_stray_lung(anatomy: np.ndarray) -> np.ndarray:
    """The chest's anatomy maps with each lung field kept to its largest piece: a decoded
    lung channel carries stray field pixels at the image's edges, which would stretch the
    field an effusion's meniscus climbs across (its lateral wall) and flatten it."""
    cleaned = anatomy.copy()
    for side in chest.SIDES:
        field = chest.lung_thickness_mm(anatomy, side) > chest.LUNG_FIELD_MM
        cleaned[chest.SIDES.index(side)][field & ~chest.lung_field(anatomy, side)] = 0.0
    return cleaned


def _chest_nodule(
    thickness: np.ndarray,
    targets: np.ndarray,
    sides: list[str],
    zones: list[str],
    rng: np.random.Generator,
) -> Plan:
    diameters = np.maximum(targets * chest.NODULE_MAX_DIAMETER_MM, chest.NODULE_MIN_DIAMETER_MM)
    solid = rng.uniform() > chest.PART_SOLID_SHARE
    core_share = 1.0 if solid else float(rng.uniform(0.3, 0.6))
    for side in sides:
        for zone in zones:
            centre = chest.nodule_site(thickness, float(diameters.max()), side, zone, rng)
            if centre is None:
                continue
            grown = [chest.nodule(centre, float(d), core_share) for d in diameters]
            return Plan(
                "nodule",
                side,
                zone,
                (diameters / chest.NODULE_MAX_DIAMETER_MM).astype(np.float32),
                np.stack([chest.lesion_maps(path) for path, _ in grown]),
                np.stack([mask for _, mask in grown]),
            )
    raise PlanningError(
        f"no room for a nodule in the {' or '.join(sides)} lung's {' or '.join(zones)} zone "
        "of this patient"
    )


def _chest_effusion(
    thickness: np.ndarray, targets: np.ndarray, sides: list[str], rng: np.random.Generator
) -> Plan:
    meniscus = chest.draw_meniscus(rng)
    for side in sides:
        found = [
            chest.effusion(thickness, side, float(t) * chest.EFFUSION_MAX_ML, meniscus)
            for t in targets
        ]
        masks = np.stack([mask for _, mask, _ in found])
        if masks[-1].any():
            reached = np.float32([volume for _, _, volume in found]) / chest.EFFUSION_MAX_ML
            return Plan(
                "effusion",
                side,
                "lower",
                np.maximum.accumulate(reached),
                np.stack([chest.lesion_maps(path) for path, _, _ in found]),
                masks,
            )
    raise PlanningError(f"the {' or '.join(sides)} lung field of this patient holds no fluid")
