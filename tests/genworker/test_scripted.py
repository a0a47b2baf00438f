"""Generators behind the TorchScript contract: the card and the modules checked on packing and
loading, and progression series sampled from them."""

import json

import numpy as np
import pytest
import torch

from genworker.checkpoint import card_path, sha256_file
from genworker.cli import main
from genworker.loading import load_model
from genworker.sampling import SeriesSpec, progression_batch
from genworker.scripted import (
    ContractError,
    ScriptedGenerator,
    pack_scripted_generator,
    validate_card,
)
from tests.scripted_generator import CARD, DiskGenerator, write_scripted_generator


def _spec(seed: int, severities=(0.0, 0.5, 1.0), method: str = "condition") -> SeriesSpec:
    z = np.random.default_rng(seed).standard_normal(CARD["z_dim"]).astype(np.float32)
    return SeriesSpec(z, "nodule", severities, 50.0, "F", method=method)


def test_a_packed_generator_loads_with_its_card_and_samples_a_progression(tmp_path):
    path = write_scripted_generator(tmp_path)
    sidecar = json.loads(card_path(path).read_text())
    assert sidecar["sha256"] == sha256_file(path)
    assert (sidecar["architecture"], sidecar["masks"]) == ("torchscript", True)
    loaded = load_model(path)
    assert isinstance(loaded, ScriptedGenerator)
    (series,) = progression_batch(loaded, [_spec(1)])
    assert series.images.shape == (3, 16, 16)
    assert series.images.min() >= 0
    assert series.images.max() <= 1
    areas = series.masks.sum(axis=(1, 2))
    assert areas[0] < areas[1] < areas[2]  # the disk grows with severity
    np.testing.assert_array_equal(series.w, np.repeat(_spec(1).z[None], 3, 0))  # z is kept


def test_series_do_not_depend_on_the_batch_they_are_sampled_in(tmp_path):
    loaded = load_model(write_scripted_generator(tmp_path))
    alone = progression_batch(loaded, [_spec(2)])[0].images
    loaded.max_batch = 2  # slices cut across series
    together = progression_batch(loaded, [_spec(1), _spec(2)])[1].images
    np.testing.assert_allclose(alone, together, atol=1e-6)


def test_a_generator_without_a_segmenter_gives_no_masks(tmp_path):
    path = write_scripted_generator(tmp_path, segmenter=False)
    assert json.loads(card_path(path).read_text())["masks"] is False
    (series,) = progression_batch(load_model(path), [_spec(1)])
    assert series.masks is None


def test_conditions_map_onto_the_ranges_of_the_card():
    card = validate_card(
        {
            **CARD,
            "conditions": {
                "findings": ["a"],
                "continuous": {"sex": [-1, 1], "severity": [0, 50], "age": [30, 60]},
            },
        }
    )
    c = card.encode("a", [0.0, 0.5], age=80.0, sex="M")
    np.testing.assert_array_equal(c, [[1, 1, 0, 60], [1, 1, 25, 60]])  # finding, sex, ml, age


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"z_dim": "8"}, "'z_dim' has the wrong type"),
        ({"modality": "CT"}, "modality 'CT' is not one Gantry writes"),
        ({"pixel_spacing_mm": 0}, "pixel_spacing_mm must be a positive number"),
        ({"channels": []}, "'channels' must name each image channel"),
        ({"conditions": {"findings": ["a"], "continuous": {"age": [0, 1]}}}, "severity's range"),
        (
            {"conditions": {"findings": ["a"], "continuous": {"severity": [0, 1], "bmi": [0, 1]}}},
            "condition 'bmi' is not one Gantry can set",
        ),
        (
            {"conditions": {"findings": ["a"], "continuous": {"severity": [1, 0]}}},
            "low < high",
        ),
    ],
)
def test_a_wrong_card_is_refused_naming_the_field(change, message):
    with pytest.raises(ContractError, match=message):
        validate_card({**CARD, **change})


def test_a_missing_field_is_named():
    card = {key: value for key, value in CARD.items() if key != "resolution"}
    with pytest.raises(ContractError, match="the card has no 'resolution'"):
        validate_card(card)


def test_a_generator_that_breaks_the_contract_is_refused_and_nothing_is_written(tmp_path):
    wrong = {**CARD, "resolution": 32}  # the module draws 16²
    torch.jit.save(torch.jit.script(DiskGenerator(8, 2, 16)), tmp_path / "g.ts")
    with pytest.raises(
        ContractError, match=r"must return images \[2, 1, 32, 32\].*got \[2, 1, 16, 16\]"
    ):
        pack_scripted_generator(tmp_path / "g.ts", wrong, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_a_generator_that_fails_on_its_inputs_is_refused(tmp_path):
    torch.jit.save(torch.jit.script(DiskGenerator(4, 2, 16)), tmp_path / "g.ts")  # z of 4
    with pytest.raises(ContractError, match=r"forward\(z \[2, 8\], c \[2, 5\]\) failed"):
        pack_scripted_generator(tmp_path / "g.ts", CARD, tmp_path / "out.pt")


def test_a_file_that_is_not_torchscript_is_refused(tmp_path):
    (tmp_path / "g.ts").write_bytes(b"not a module")
    with pytest.raises(ContractError, match="the generator is not a TorchScript module"):
        pack_scripted_generator(tmp_path / "g.ts", CARD, tmp_path / "out.pt")


def test_direction_series_are_refused(tmp_path):
    loaded = load_model(write_scripted_generator(tmp_path))
    with pytest.raises(ValueError, match="through its condition only"):
        progression_batch(loaded, [_spec(1, method="direction")])


def test_the_cli_packs_a_generator_and_names_what_is_wrong(tmp_path, capsys):
    torch.jit.save(torch.jit.script(DiskGenerator(8, 2, 16)), tmp_path / "g.ts")
    (tmp_path / "card.json").write_text(json.dumps(CARD))
    out = tmp_path / "disk.pt"
    args = ["import-torchscript", str(tmp_path / "g.ts"), "--card", str(tmp_path / "card.json")]
    assert main([*args, "--out", str(out)]) == 0
    assert isinstance(load_model(out), ScriptedGenerator)
    (tmp_path / "card.json").write_text(json.dumps({**CARD, "modality": "US"}))
    assert main([*args, "--out", str(tmp_path / "other.pt")]) == 2
    assert "modality 'US' is not one Gantry writes" in capsys.readouterr().err
