"""The shipped models' recipes: what they build fits where it must go, and each shipped
latent model was trained by its recipe."""

import json

import pytest

from genworker.checkpoint import save_generator
from genworker.cohorts import brain, chest
from genworker.latent.cli import MODELS_DIR
from genworker.latent.recipes import ARCHITECTURES, latent_recipe
from genworker.latent.recipes import RECIPES as LATENT_RECIPES
from genworker.networks import build_generator
from genworker.recipes import RECIPES, recipe

FINDINGS = {brain.NAME: brain.FINDINGS, chest.NAME: chest.FINDINGS}
# Checkpoints stay under 25 MB, and under 16 MiB so that a GPU host's run can send them back
# with its results.
LARGEST_CHECKPOINT = 16 * 2**20


@pytest.mark.parametrize(
    ("name", "device_class"), [(name, kind) for name in RECIPES for kind in RECIPES[name]]
)
def test_every_recipe_ships_a_checkpoint_small_enough(tmp_path, name, device_class):
    r = recipe(name, device_class)
    path = tmp_path / f"{r.name}.pt"
    save_generator(path, build_generator(r.config(FINDINGS[r.cohort])), model_card={}, half=True)
    assert path.stat().st_size < LARGEST_CHECKPOINT


def test_an_unknown_recipe_or_device_class_is_named():
    with pytest.raises(ValueError, match="unknown recipe 'knee'"):
        recipe("knee", "gpu")
    with pytest.raises(ValueError, match="no 'tpu' variant"):
        recipe("brain-glioma", "tpu")


@pytest.mark.parametrize(
    "name",
    [f"{recipe}-{architecture}" for recipe in LATENT_RECIPES for architecture in ARCHITECTURES],
)
def test_a_shipped_latent_model_was_trained_by_its_recipe_within_its_budget(name):
    card = json.loads((MODELS_DIR / f"{name}.card.json").read_text())
    recipe = latent_recipe(name.removesuffix(f"-{card['architecture']}"))
    stages = card["training"]["stages"]
    reader = {"anatomy_reader": recipe.anatomy_reader_steps}
    assert {stage: record["steps"] for stage, record in stages.items()} == {
        "autoencoder": recipe.autoencoder_steps,
        "detail": recipe.detail_steps,
        "renderer": recipe.renderer_steps,
        "segmenter": recipe.segmenter_steps,
        "anatomy": recipe.anatomy_steps[card["architecture"]],
        **(reader if recipe.anatomy_reader_channels else {}),
    }
    wall_minutes = sum(record["wall_seconds"] for record in stages.values()) / 60
    assert card["training"]["wall_minutes"] == round(wall_minutes, 1)
    assert ("anatomy_calibration" in card["training"]) is (
        card["architecture"] in recipe.anatomy_calibration
    )
    assert ("lesion_gain" in card["training"]) is recipe.lesion_gain
    fitted = [card["training"].get(part, {}) for part in ("anatomy_calibration", "lesion_gain")]
    fitting_minutes = sum(record.get("wall_seconds", 0.0) for record in fitted) / 60
    assert wall_minutes + fitting_minutes <= recipe.cpu_minutes
