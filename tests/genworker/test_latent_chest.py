"""The chest radiograph in the latent engine: nodules and effusions planned on a patient's
lung maps where the template asks, and a chest recipe that trains, ships and draws series."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from genworker.cohorts import chest_radiograph as cr
from genworker.cohorts import sources
from genworker.latent import anatomy_gan, anatomy_reader, model, training
from genworker.latent.model import load_latent_model, save_latent_model
from genworker.latent.planning import PLACEMENTS, PlanningError, plan_chest
from genworker.latent.recipes import latent_recipe
from genworker.networks import z_from_seed
from tests.genworker.tiny_latent import TINY_LENGTHS

pytestmark = pytest.mark.skipif(
    not sources.is_fetched("pyradiomics"),
    reason=f"the pyradiomics anatomy is not fetched (run `{sources.FETCH_COMMAND}`)",
)

SEVERITIES = [0.4, 0.6, 0.9]
HALF = {"rtol": 1e-3, "atol": 1e-3}  # a part stored in half precision


@pytest.fixture(scope="module")
def lungs():
    return cr.draw_subject(np.random.default_rng(5), 55.0, 1).anatomy


@pytest.mark.parametrize(("side", "zone"), [("left", "middle"), ("right", "upper")])
def test_a_nodule_grows_where_it_was_asked_for(lungs, side, zone):
    plan = plan_chest(
        lungs, "nodule", SEVERITIES, np.random.default_rng(1), side=side, location=zone
    )
    assert (plan.side, plan.location) == (side, zone)
    areas = plan.masks.sum(axis=(1, 2))
    assert np.all(np.diff(areas) > 0)
    for mask in plan.masks:
        found = cr.facts(mask, lungs)
        assert (found["side"], found["location"]) == (side, zone)
    assert plan.maps.shape == (3, 1, cr.LESION_MAP_SIZE, cr.LESION_MAP_SIZE)
    assert plan.severity == pytest.approx(SEVERITIES)


def test_an_effusion_gathers_at_the_base_of_the_side_asked_for(lungs):
    plan = plan_chest(lungs, "effusion", SEVERITIES, np.random.default_rng(2), side="right")
    assert (plan.side, plan.location) == ("right", "lower")
    assert np.all(np.diff(plan.masks.sum(axis=(1, 2))) > 0)
    assert cr.facts(plan.masks[-1], lungs)["side"] == "right"
    assert np.all(np.diff(plan.severity) >= 0)


def test_stray_lung_at_the_image_edges_leaves_an_effusion_as_planned_without_it(lungs):
    # A decoded right-lung channel carries stray field pixels at both edges of the image.
    strayed = lungs.copy()
    strayed[0, 100:140, :3] = 0.3  # 30 mm of lung on the patient's right edge
    strayed[0, 100:140, -3:] = 0.3  # and on the left edge
    clean = plan_chest(lungs, "effusion", SEVERITIES, np.random.default_rng(2), side="right")
    planned = plan_chest(strayed, "effusion", SEVERITIES, np.random.default_rng(2), side="right")
    np.testing.assert_array_equal(planned.masks, clean.masks)
    np.testing.assert_array_equal(planned.maps, clean.maps)


def test_what_the_chest_cannot_plan_is_refused_with_the_reason(lungs):
    rng = np.random.default_rng(3)
    with pytest.raises(PlanningError, match="'lower'"):
        plan_chest(lungs, "effusion", SEVERITIES, rng, side="left", location="upper")
    with pytest.raises(PlanningError, match="not 'glioma'"):
        plan_chest(lungs, "glioma", SEVERITIES, rng)
    with pytest.raises(PlanningError, match="no room for a nodule in the left lung's upper"):
        plan_chest(lungs * 0.2, "nodule", SEVERITIES, rng, side="left", location="upper")
    with pytest.raises(PlanningError, match="no right lung field: no lung to place the nodule"):
        plan_chest(np.zeros_like(lungs), "nodule", SEVERITIES, rng)
    assert not plan_chest(lungs, "normal", SEVERITIES, rng).masks.any()
    assert set(PLACEMENTS["chest-radiograph"]) == {"nodule", "effusion"}


def test_the_chest_recipe_trains_ships_and_draws_a_planned_series(
    lungs, tmp_path_factory, monkeypatch
):
    torch.set_num_threads(1)
    recipe = replace(
        latent_recipe("chest-radiograph"), **TINY_LENGTHS, anatomy_calibration=("cgan",)
    )
    encoded, grids = training.normal_latents, []

    def with_more_subjects(*args):  # a calibration needs more normal grids than 512 cells
        found = encoded(*args)
        grids.append(len(found.latents) + 600)
        more = np.random.default_rng(0).standard_normal((600, *found.latents.shape[1:]))
        return anatomy_gan.AnatomyData(
            np.concatenate([found.latents, more.astype(np.float32)]),
            np.concatenate([found.age, np.full(600, 50.0, np.float32)]),
            np.concatenate([found.sex, np.zeros(600, found.sex.dtype)]),
        )

    monkeypatch.setattr(training, "normal_latents", with_more_subjects)
    monkeypatch.setattr(anatomy_reader, "FIT_SUBJECTS", 12)
    run = tmp_path_factory.mktemp("chest-run")
    training.train_recipe(recipe, run, architectures=("cgan",), workers=1)
    parts = training.trained_parts(recipe, run, "cgan")
    record = training.calibration_record(run / "cgan")
    assert (record["training_grids"], record["drawn_grids"]) == (grids[-1], 4 * grids[-1])
    reader = training.anatomy_reader_record(run)
    assert (reader["subjects"], reader["channels"]) == (12, ["right lung", "left lung"])
    assert reader["steps"] == recipe.anatomy_reader_steps
    path = run / "tiny-chest.pt"
    save_latent_model(
        path, domain=model.DOMAINS["chest-radiograph"], card={"name": "tiny-chest"}, **parts
    )
    loaded = load_latent_model(path)
    assert (loaded.domain.modality, loaded.domain.channels) == ("DX", ("DX",))
    for name, value in parts["calibration"].state_dict().items():
        assert torch.equal(loaded.calibration.state_dict()[name], value)  # full precision
    for name, value in parts["anatomy_reader"].state_dict().items():
        torch.testing.assert_close(loaded.anatomy_reader.state_dict()[name], value, **HALF)
    # The tiny decoder draws no lungs: plan on a simulated subject's, and keep any image.
    plan = model.PLANNERS["chest-radiograph"]
    monkeypatch.setitem(
        model.PLANNERS, "chest-radiograph", lambda _a, *a, **k: plan(lungs, *a, **k)
    )
    monkeypatch.setattr(model, "MIN_DICE", -1.0)
    series = loaded.series(
        z_from_seed(4, 1, loaded.z_dim)[0],
        age=60.0,
        sex="M",
        finding="nodule",
        severities=[0.3, 0.8],
        seed=4,
        side="left",
        location="lower",
    )
    assert series.images.shape == (2, 1, cr.RESOLUTION, cr.RESOLUTION)
    assert (series.side, series.location) == ("left", "lower")
    assert np.all(np.diff(series.masks.sum(axis=(1, 2))) > 0)
    assert series.seen.shape == series.masks.shape
    # The series' anatomy: the lungs as the reader reads them from the decoded film, the
    # body as decoded.
    latent, _ = loaded.normal_latent(z_from_seed(4, 1, loaded.z_dim)[0], 60.0, "M")
    with torch.no_grad():
        film, decoded = loaded.autoencoder.decode(latent)
        read = loaded.anatomy_reader(film).clamp(min=0)[0].numpy()
    np.testing.assert_array_equal(series.anatomy[:2], read)
    assert not np.allclose(series.anatomy[:2], decoded[0, :2].numpy(), atol=1e-3)
    np.testing.assert_array_equal(series.anatomy[2], decoded[0, 2].numpy())


def test_a_nodule_is_read_from_the_change_it_makes_and_matches_its_mask():
    track = cr.subject_track(11, 0, 3, finding=cr.FINDINGS.index("nodule"))
    seen = model.changed_region(track.clean, track.normal, track.noise)
    for mask, read in zip(track.masks, seen, strict=True):
        if mask.any():
            assert 2 * (mask & read).sum() / (mask.sum() + read.sum()) > 0.8
        else:
            assert not read.any()
    faint = track.normal + 0.01 * (track.clean - track.normal[None])
    assert not model.changed_region(faint, track.normal, track.noise).any()


class _EverywhereSegmenter:
    def segment(self, images: torch.Tensor) -> torch.Tensor:
        return torch.ones(images.shape[0], *images.shape[2:], dtype=torch.bool)


def test_the_chest_reads_nodules_by_their_change_and_effusions_by_the_segmenter():
    chest = model.DOMAINS["chest-radiograph"]
    reader = model.LatentModel(chest, None, None, None, None, _EverywhereSegmenter(), card={})
    clean = np.zeros((1, 1, 8, 8), np.float32)
    clean[0, 0, 2:4, 2:4] = 0.5
    normal = np.zeros((1, 8, 8), np.float32)
    noise = np.array([0.01], np.float32)
    by_change = reader.read("nodule", clean, clean, normal, noise)
    assert by_change.sum() == 4
    assert by_change[0, 2:4, 2:4].all()
    assert reader.read("effusion", clean, clean, normal, noise).all()
