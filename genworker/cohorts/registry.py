"""The cohorts Gantry can simulate, by name."""

from __future__ import annotations

from collections.abc import Callable

from genworker.cohorts import Cohort, brain, chest

BUILDERS: dict[str, Callable[..., Cohort]] = {
    brain.NAME: brain.build,
    chest.NAME: chest.build,
}


def build_cohort(
    name: str, *, resolution: int, n_subjects: int, seed: int, timepoints: int = 5
) -> Cohort:
    """Simulate the cohort ``name``: ``n_subjects`` tracks of ``timepoints`` images each.

    The same arguments give a bit-identical cohort; subject i is the same for
    any ``n_subjects`` > i. Whole tracks (about 20% per finding) are held out.
    """
    if name not in BUILDERS:
        raise ValueError(f"unknown cohort {name!r}; known cohorts: {sorted(BUILDERS)}")
    if resolution < 16 or n_subjects < 1 or timepoints < 1:
        raise ValueError("need resolution >= 16, n_subjects >= 1 and timepoints >= 1")
    return BUILDERS[name](
        resolution=resolution, n_subjects=n_subjects, seed=seed, timepoints=timepoints
    )
