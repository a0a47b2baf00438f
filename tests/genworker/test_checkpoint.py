"""Generator checkpoints: exact round trip, float16 export, integrity and format checks."""

from __future__ import annotations

import json
import pathlib
import pickle

import numpy as np
import pytest
import torch

from genworker.checkpoint import (
    GENERATOR_FORMAT,
    card_path,
    load_generator,
    load_training_state,
    save_generator,
    sha256_file,
)
from genworker.networks import build_generator
from genworker.training import export_generator
from tests.toy_training import toy_config

CARD = {"name": "toy", "architecture": "stylegan2", "metrics": {"fd": 1.5}}


def random_generator(seed: int = 0, **changes):
    torch.manual_seed(seed)
    return build_generator(toy_config(**changes)).eval().requires_grad_(False)


def lesion_conditions(generator) -> np.ndarray:
    return generator.schema.encode("lesion", np.linspace(0, 1, 8), 55.0, "M")


def test_a_saved_generator_loads_back_identical(tmp_path, one_torch_thread):
    generator = random_generator()
    direction = np.linspace(-1, 1, generator.w_dim, dtype=np.float32)
    path = tmp_path / "toy.pt"
    digest = save_generator(path, generator, model_card=CARD, directions={"lesion": direction})

    loaded = load_generator(path)
    assert loaded.sha256 == digest == sha256_file(path)
    sidecar = json.loads(card_path(path).read_text())
    assert sidecar == {**CARD, "file": "toy.pt", "sha256": digest}
    assert loaded.card == CARD
    np.testing.assert_array_equal(loaded.directions["lesion"], direction)
    assert loaded.generator.config == generator.config
    assert not loaded.generator.training
    cond = lesion_conditions(generator)
    assert torch.equal(loaded.generator.sample(cond, seed=4), generator.sample(cond, seed=4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.card.json", "toy.pt"]


def test_float16_weights_halve_the_file_and_keep_the_pictures(tmp_path, one_torch_thread):
    generator = random_generator(
        resolution=32, z_dim=64, w_dim=64, channel_base=2048, channel_max=64
    )  # weights, not the card, dominate the file
    save_generator(tmp_path / "fp32.pt", generator, model_card=CARD)
    save_generator(tmp_path / "fp16.pt", generator, model_card=CARD, half=True)
    ratio = (tmp_path / "fp16.pt").stat().st_size / (tmp_path / "fp32.pt").stat().st_size
    assert 0.45 < ratio < 0.55

    half = load_generator(tmp_path / "fp16.pt").generator
    assert next(half.parameters()).dtype == torch.float32  # computes in float32 after loading
    cond = lesion_conditions(generator)
    difference = (half.sample(cond, seed=1) - generator.sample(cond, seed=1)).abs()
    assert difference.max() < 0.02  # on the [-1, 1] scale
    assert difference.mean() < 0.002


def test_a_float16_export_of_a_trained_state_is_smaller_and_close(toy_training, tmp_path):
    state_path = toy_training.result.state_path
    full = tmp_path / "full.pt"
    half = tmp_path / "half.pt"
    export_generator(state_path, full, direction_samples=200)
    export_generator(state_path, half, half=True, direction_samples=200)
    assert half.stat().st_size < 0.65 * full.stat().st_size  # the card is a fixed overhead
    full_loaded, half_loaded = load_generator(full), load_generator(half)
    assert full_loaded.card["weights"] == "ema, float32"
    assert half_loaded.card["weights"] == "ema, float16"
    cond = lesion_conditions(full_loaded.generator)
    difference = half_loaded.generator.sample(cond, seed=2) - full_loaded.generator.sample(
        cond, seed=2
    )
    assert difference.abs().max() < 0.02


def test_a_checkpoint_that_does_not_match_its_card_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    expected = save_generator(path, random_generator(seed=0), model_card=CARD)
    save_generator(tmp_path / "other.pt", random_generator(seed=1), model_card=CARD)
    path.write_bytes((tmp_path / "other.pt").read_bytes())  # the weights were swapped

    with pytest.raises(ValueError, match=f"model.card.json expects {expected}"):
        load_generator(path)
    card_path(path).unlink()  # without a sidecar there is nothing to check against
    assert load_generator(path).sha256 == sha256_file(tmp_path / "other.pt")


def test_files_of_another_format_are_refused(tmp_path, toy_training):
    state_path = toy_training.result.state_path
    with pytest.raises(ValueError, match=f"is not a {GENERATOR_FORMAT} checkpoint"):
        load_generator(state_path)
    with pytest.raises(ValueError, match="is not a gantry-training-state/1 file"):
        load_training_state(toy_training.result.export_path)
    future = tmp_path / "future.pt"
    payload = torch.load(toy_training.result.export_path, weights_only=True)
    torch.save({**payload, "format": "gantry-generator/2"}, future)
    with pytest.raises(ValueError, match="is not a gantry-generator/1 checkpoint"):
        load_generator(future)


class _Touches:
    """Unpickling this object would create a file: code run from a checkpoint."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_loading_never_runs_code_from_the_file(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": GENERATOR_FORMAT, "config": _Touches(marker)}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_generator(path)
    assert not marker.exists()
