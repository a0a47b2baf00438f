"""A generator really trained, briefly, on the toy disc cohort (tests/toy_cohort.py).

It trains with two of the shipped recipes' terms: lesion burden (``lesion_weight``), which
ties the mask's size to severity from the first steps, and identity (``identity_weight``),
which holds the image outside the lesion as severity changes. Without them the outcome of
150 steps depended on the draw: after a change of float rounding in the augmentation (stop
22), training seeds 2 and 4 grew the mask in at most half of 8 series, and seed 0 had one
series shrink, which failed the suite. Measured with both, for training seeds 0-5, 150 steps
of 16 images (about ten seconds of one CPU core): the mask grows in 7 or 8 of 8 series by
the condition method (mean Spearman correlation of mask area and severity 0.93-1.0), and by
the direction method in 8 of 8 but for seed 4 (5 of 8); identity preservation within a
series is 0.86-0.99 (0.27-0.52 across series).
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
        lesion_weight=1.0,
        identity_weight=1.0,
        seed=0,
        progress=False,
    )
    return ToyTraining(cohort, config, result)
