"""The shipped models' recipes: what they build fits where it must go."""

import pytest

from genworker.checkpoint import save_generator
from genworker.cohorts import brain, chest
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
