"""Pick the best snapshot of a training run, judged on the training subjects alone.

A GAN does not converge to a point: the same recipe trained twice, or trained longer, can
land far apart (a chest run resumed from 48 to 96 kimg went from a Fréchet-distance ratio of
1.8 to 46). A run therefore keeps snapshots of its EMA generator
(``train(snapshot_kimg=...)``), and :func:`rank_snapshots` measures each with
:func:`~genworker.evaluation.evaluate` on a validation fold: whole tracks of the cohort's
*training* split, kept out of the validation regressor's training. The cohort's held-out
split is never looked at, so what ``evaluate`` then reports on it for the chosen snapshot
stays an honest estimate rather than the best of several draws.

Snapshots are ranked by the quality targets: most targets met first, then the smallest sum
of relative shortfalls (how far each missed figure is from its bound, as a share of it).
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from genworker.checkpoint import load_generator
from genworker.cohorts import Cohort
from genworker.cohorts.tracks import split_by_track
from genworker.evaluation import FEATURE_WIDTH, REGRESSOR_WIDTH, evaluate, one_cpu_thread
from genworker.evaluation_seeds import combine, map_seeds
from genworker.features import train_feature_net
from genworker.training import export_generator, snapshots

VALIDATION_FRACTION = 0.25  # of the training tracks, per finding
VALIDATION_SEED = 1  # the fold's split, distinct from the cohort's own
METHOD = {
    "validation": f"{VALIDATION_FRACTION:.0%} of the training tracks per finding (split seed "
    f"{VALIDATION_SEED}), kept out of the validation regressor's training; the held-out split "
    "is not used",
    "ranking": "most of the quality targets met, then the smallest sum of relative shortfalls",
}


@dataclass(frozen=True)
class SnapshotScore:
    path: Path
    kimg: float
    targets_met: int
    shortfall: float  # sum over targets of the relative distance to a missed bound
    targets: list[dict]  # evaluation.check_targets() on the validation fold

    def to_dict(self) -> dict:
        return {
            "snapshot": self.path.name,
            "kimg": self.kimg,
            "targets_met": self.targets_met,
            "shortfall": round(self.shortfall, 4),
            "targets": {t["name"]: t["value"] for t in self.targets},
        }


def validation_cohort(cohort: Cohort, *, seed: int = VALIDATION_SEED) -> Cohort:
    """``cohort``'s training split, with whole tracks of it marked held out."""
    train = cohort.train()
    fold = split_by_track(train.track, train.finding, fraction=VALIDATION_FRACTION, seed=seed)
    return dataclasses.replace(train, held_out=fold)


def shortfall(targets: list[dict]) -> float:
    """The sum of :func:`~genworker.evaluation.check_targets`' shortfalls: of each missed
    target, its relative distance from its bound; an unmeasured one counts 1."""
    return sum(target["shortfall"] for target in targets)


def rank_snapshots(
    run_dir: str | Path,
    cohort: Cohort,
    *,
    seeds: Sequence[int] = (0,),
    workers: int = 1,
    device: str | torch.device = "cpu",
    feature_epochs: int = 10,
    regressor_epochs: int = 30,
    progress: bool = True,
) -> list[SnapshotScore]:
    """Every snapshot of the run in ``run_dir``, best first (see the module docstring).

    Each is exported as it would ship (fp16, with its severity directions) and measured at
    every one of ``seeds``: a seed trains its own feature net and regressor on the fold
    (seeds s and s + 1) and serves every snapshot with them. A snapshot's targets are
    checked on its figures combined over the seeds as the model card combines them
    (:func:`~genworker.evaluation_seeds.combine`): one evaluation seed moves the figures
    as much as neighbouring snapshots differ. ``workers`` > 1 measures seeds in that many
    processes on the CPU, with the same figures.
    """
    paths = snapshots(run_dir)
    if not paths:
        raise FileNotFoundError(f"{run_dir} has no snapshots: train with snapshot_kimg")
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise ValueError("rank on at least one seed")
    validation = validation_cohort(cohort)
    measure = functools.partial(
        _measure_snapshots,
        paths,
        validation,
        device=device,
        feature_epochs=feature_epochs,
        regressor_epochs=regressor_epochs,
    )
    by_seed = map_seeds(measure, seeds, workers=workers, device=device)
    scores = []
    for index, path in enumerate(paths):
        targets = combine([figures[index] for figures in by_seed])["targets"]
        score = SnapshotScore(
            path=path,
            kimg=by_seed[0][index]["kimg"],
            targets_met=sum(bool(t["met"]) for t in targets),
            shortfall=shortfall(targets),
            targets=targets,
        )
        if progress:
            print(
                f"{path.name}: {score.kimg:g} kimg, {score.targets_met} targets met, "
                f"shortfall {score.shortfall:.3f}",
                flush=True,
            )
        scores.append(score)
    return sorted(scores, key=lambda s: (-s.targets_met, s.shortfall, -s.kimg))


@one_cpu_thread()
def _measure_snapshots(
    paths: list[Path],
    validation: Cohort,
    *,
    seed: int,
    device: str | torch.device,
    feature_epochs: int,
    regressor_epochs: int,
) -> list[dict]:
    """:func:`~genworker.evaluation.evaluate`'s figures of each snapshot on the fold at
    ``seed``, with the snapshot's kimg. On one CPU thread, like ``evaluate``, so that the
    ranking does not depend on the machine's cores."""
    feature_net = train_feature_net(
        validation, epochs=feature_epochs, seed=seed, device=device, width=FEATURE_WIDTH
    )
    regressor = train_feature_net(
        validation.train(),
        epochs=regressor_epochs,
        seed=seed + 1,
        device=device,
        width=REGRESSOR_WIDTH,
    )
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            exported = Path(scratch) / path.name
            export_generator(path, exported, half=True)
            loaded = load_generator(exported, device)
            figures = evaluate(
                loaded,
                validation,
                seed=seed,
                device=device,
                feature_net=feature_net,
                regressor=regressor,
            )
            results.append({**figures, "kimg": loaded.card["training"]["kimg"]})
    return results
