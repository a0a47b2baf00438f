"""The cohorts Gantry can simulate, by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from genworker.cohorts import Cohort, brain, chest
from genworker.cohorts.store import read_cohort, write_cohort

BUILDERS: dict[str, Callable[..., Cohort]] = {
    brain.NAME: brain.build,
    chest.NAME: chest.build,
}


def build_cohort(
    name: str,
    *,
    resolution: int,
    n_subjects: int,
    seed: int,
    timepoints: int = 5,
    cache: str | Path | None = None,
) -> Cohort:
    """Simulate the cohort ``name``: ``n_subjects`` tracks of ``timepoints`` images each.

    The same arguments give a bit-identical cohort; subject i is the same for
    any ``n_subjects`` > i. Whole tracks (about 20% per finding) are held out.
    With ``cache``, a folder there named by the arguments holds the cohort once built
    (training and shipping a recipe then simulate it once).
    """
    if name not in BUILDERS:
        raise ValueError(f"unknown cohort {name!r}; known cohorts: {sorted(BUILDERS)}")
    if resolution < 16 or n_subjects < 1 or timepoints < 1:
        raise ValueError("need resolution >= 16, n_subjects >= 1 and timepoints >= 1")
    if cache is None:
        return BUILDERS[name](
            resolution=resolution, n_subjects=n_subjects, seed=seed, timepoints=timepoints
        )
    folder = Path(cache) / f"{name}-{resolution}px-{n_subjects}subjects-{timepoints}tp-seed{seed}"
    if (folder / "manifest.json").exists():  # written last: the cohort is whole
        return read_cohort(folder)
    cohort = build_cohort(
        name, resolution=resolution, n_subjects=n_subjects, seed=seed, timepoints=timepoints
    )
    write_cohort(cohort, folder)
    return cohort
