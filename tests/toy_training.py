"""A generator really trained, briefly, on the toy disc cohort (tests/toy_cohort.py).

Measured: 150 steps of 16 images (about ten seconds of one CPU core) make the generated
lesion mask grow monotonically with severity in 7 or 8 of 8 series, by either
progression method, for training seeds 0-3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genworker.cohorts import Cohort
from genworker.networks import GeneratorConfig
from genworker.training import TrainResult, train
from tests.toy_cohort import FINDINGS, disc_cohort

TOY_RESOLUTION = 16
TOY_STEPS = 150
TOY_BATCH = 16


@dataclass
class ToyTraining:
    cohort: Cohort
    config: GeneratorConfig
    result: TrainResult


def toy_config(**changes) -> GeneratorConfig:
    """A 16² StyleGAN2 drawing image + lesion mask, small enough to train in seconds."""
    settings = {
        "resolution": TOY_RESOLUTION,
        "findings": FINDINGS,
        "z_dim": 16,
        "w_dim": 16,
        "img_channels": 2,
        "channel_base": 128,
        "channel_max": 32,
        "mapping_layers": 2,
    }
    return GeneratorConfig(**{**settings, **changes})


def train_toy(out_dir: Path) -> ToyTraining:
    cohort = disc_cohort(resolution=TOY_RESOLUTION, n_tracks=48, seed=0)
    config = toy_config()
    result = train(
        cohort,
        config=config,
        out_dir=out_dir,
        batch_size=TOY_BATCH,
        steps=TOY_STEPS,
        lr=0.005,
        seed=0,
        progress=False,
    )
    return ToyTraining(cohort, config, result)
