"""A tiny real generator checkpoint for tests: random weights, real network and format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genworker.checkpoint import save_generator
from genworker.networks import GeneratorConfig, build_generator

FINDINGS = ("normal", "glioma")


def write_tiny_checkpoint(folder: Path, *, modality: str = "MR") -> Path:
    torch.manual_seed(0)
    config = GeneratorConfig(
        architecture="stylegan2",
        resolution=32,
        findings=FINDINGS,
        z_dim=32,
        w_dim=32,
        img_channels=2,
        channel_base=256,
        channel_max=32,
        mapping_layers=2,
    )
    generator = build_generator(config)
    direction = np.random.default_rng(0).standard_normal(config.w_dim).astype(np.float32)
    card = {
        "name": "tiny-brain",
        "architecture": config.architecture,
        "modality": modality,
        "resolution": config.resolution,
        "conditions": config.schema.to_dict(),
        "config": config.to_dict(),
        "training": {"note": "untrained: random weights for tests"},
        "metrics": {},
    }
    path = folder / "tiny-brain.pt"
    save_generator(path, generator, model_card=card, directions={"glioma": direction})
    return path
