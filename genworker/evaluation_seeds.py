"""The model card's figures as means over several evaluation seeds.

One :func:`~genworker.evaluation.evaluate` trains its own feature network and severity
regressor, draws its own sets, z and series, all from its ``seed``. That seed moves the
figures more than anything else in it: the shipped brain model measured a Fréchet-distance
ratio of 4.6, 3.0 and 8.2 and a condition Spearman of 0.91, 0.88 and 0.90 at seeds 0, 1
and 2, so one evaluation cannot tell whether a target that close is met.
:func:`evaluate_over_seeds` runs one evaluation per seed and reports their means, with
every seed's figures beside them (``by_seed``).

Each evaluation runs on one CPU thread and depends only on its seed, so seeds can run in
parallel processes (``workers``) with the same result as one after another.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import numpy as np
import torch

from genworker.checkpoint import LoadedGenerator
from genworker.cohorts import Cohort
from genworker.evaluation import check_targets, evaluate
from genworker.memory import tuned

EVALUATION_SEEDS = 5  # what `ship` and `evaluate` use unless told
T = TypeVar("T")


def evaluate_over_seeds(
    loaded: LoadedGenerator,
    cohort: Cohort,
    *,
    seeds: Sequence[int] = tuple(range(EVALUATION_SEEDS)),
    workers: int = 1,
    **options,
) -> dict:
    """:func:`~genworker.evaluation.evaluate` at each of ``seeds``, combined by
    :func:`combine`; ``options`` go to every evaluation. ``workers`` > 1 evaluates seeds
    in that many processes (the generator and cohort are sent to them) where the generator
    is on the CPU; on a GPU the seeds run one after another."""
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise ValueError("evaluate over at least one seed")
    started = time.perf_counter()
    work = functools.partial(evaluate, loaded, cohort, **options)
    results = map_seeds(work, seeds, workers=workers, device=loaded.generator.device)
    combined = combine(results)
    combined["seconds"] = round(time.perf_counter() - started, 1)
    return combined


def map_seeds(
    work: Callable[..., T], seeds: Sequence[int], *, workers: int, device: str | torch.device
) -> list[T]:
    """``work(seed=s)`` for each of ``seeds``, in order: in ``workers`` spawned processes
    (``work`` and its arguments are pickled to them) where ``workers`` > 1 and the work runs
    on the CPU; on a GPU, or with one worker, one after another in this process."""
    if workers <= 1 or len(seeds) <= 1 or torch.device(device).type != "cpu":
        return [work(seed=seed) for seed in seeds]
    context = multiprocessing.get_context("spawn")  # torch is not fork-safe
    with tuned(), ProcessPoolExecutor(min(workers, len(seeds)), mp_context=context) as pool:
        futures = [pool.submit(work, seed=seed) for seed in seeds]
        return [future.result() for future in futures]


def combine(results: list[dict]) -> dict:
    """One result from :func:`~genworker.evaluation.evaluate`'s results at several seeds.

    Every figure is the arithmetic mean over seeds, except the Fréchet-distance ratios: each
    seed's ratio is taken in its own feature space (distances in two spaces are on different
    scales), and the headline and the ratios by finding are their geometric means, the mean
    that treats a ratio and its inverse alike. Lists (the FD draws) are joined; other values
    are kept where every seed agrees and None where they do not or any seed could not measure
    them; a minimum (the nearest distance to a training image) is the least over seeds.
    Targets are checked on the means; ``by_seed`` keeps each seed's own figures.
    """
    combined = _mean(results)
    on = combined["evaluated_on"]
    on.pop("seed")
    on["seeds"] = [result["evaluated_on"]["seed"] for result in results]
    if combined.get("draws"):
        combined["draws"]["seeds"] = len(results)
    combined["fd_ratio"] = _geometric_mean([result.get("fd_ratio") for result in results])
    for name, figures in (combined.get("fd_by_finding") or {}).items():
        figures["ratio"] = _geometric_mean(
            [result["fd_by_finding"][name]["ratio"] for result in results]
        )
    combined["by_seed"] = [_seed_figures(result) for result in results]
    combined["targets"] = check_targets(combined)
    return combined


def _geometric_mean(ratios: list[float | None]) -> float | None:
    if any(ratio is None or ratio <= 0 for ratio in ratios):
        return None
    return math.exp(np.mean(np.log(ratios)))


def _mean(values: list, key: str = "") -> object:
    """The same entry (``key``) of several results, combined as :func:`combine` says; an
    entry named ``*_min`` is the least over seeds."""
    first = values[0]
    if isinstance(first, dict):
        return {name: _mean([value.get(name) for value in values], name) for name in first}
    if any(value is None for value in values):
        return None
    if key.endswith("_min"):
        return min(values)
    if isinstance(first, list):
        return [item for value in values for item in value]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numbers and not all(isinstance(v, int) and v == first for v in values):
        return float(np.mean(values))
    return first if all(value == first for value in values) else None


def _seed_figures(result: dict) -> dict:
    return {
        "seed": result["evaluated_on"]["seed"],
        "fd": result.get("fd"),
        "fd_train_vs_held_out": result.get("fd_train_vs_held_out"),
        "regressor_spearman": result["severity_regressor"]["held_out"]["spearman"],
        "targets": {target["name"]: target["value"] for target in result["targets"]},
    }
