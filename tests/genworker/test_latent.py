"""The latent engine: resumable stages, the anatomy GAN's training tricks, the shipped bundle,
and series whose ground truth is the plan and whose images pass the image check."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from genworker.checkpoint import card_path
from genworker.cohorts import sources
from genworker.latent import anatomy_gan, anatomy_reader, lesion_gain, model, training
from genworker.latent import cli as latent_cli
from genworker.latent.autoencoder import AutoencoderData, train_autoencoder
from genworker.latent.model import CaseRejected, load_latent_model, save_latent_model
from genworker.latent.planning import PlanningError
from genworker.latent.recipes import ARCHITECTURES, latent_recipe
from genworker.networks import z_from_seed

pytestmark = pytest.mark.skipif(
    not sources.is_fetched("antspyx"),
    reason=f"the antspyx anatomy is not fetched (run `{sources.FETCH_COMMAND}`)",
)


@pytest.fixture(scope="module")
def tiny_model(tiny_brain_run, tmp_path_factory):
    recipe, run = tiny_brain_run
    parts = training.trained_parts(recipe, run, "cgan")
    path = tmp_path_factory.mktemp("models") / "tiny-brain.pt"
    save_latent_model(
        path,
        domain=model.DOMAINS["brain-mri"],
        card={"name": "tiny-brain"},
        **parts,
    )
    return path


def test_a_stage_stopped_and_resumed_ends_where_an_unbroken_run_ends(tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = rng.random((4, 3, 64, 64)).astype(np.float16)
    data = AutoencoderData(images, images, np.ones(4, bool))
    config = replace(latent_recipe("brain-mri").autoencoder, widths=(4, 8, 8, 8))
    options = {"steps": 4, "batch_size": 2, "crop": 32}
    whole, _ = train_autoencoder(data, config, out_dir=tmp_path / "whole", **options)
    train_autoencoder(data, config, out_dir=tmp_path / "parts", max_steps=2, **options)
    resumed, progress = train_autoencoder(data, config, out_dir=tmp_path / "parts", **options)
    assert progress.step == 4
    for name, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0)


def test_augmenting_with_probability_zero_changes_nothing_and_one_changes_every_grid():
    x = torch.randn(6, 8, 32, 32)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(anatomy_gan.augment_grid(x, 0.0, generator), x)
    moved = anatomy_gan.augment_grid(x, 1.0, generator)
    assert moved.shape == x.shape
    assert all(not torch.equal(moved[i], x[i]) for i in range(len(x)))


def test_the_subject_distance_pairs_two_different_subjects():
    latents = np.stack([np.zeros((2, 4, 4)), np.ones((2, 4, 4))]).astype(np.float32)
    assert anatomy_gan.subject_distance(latents, np.random.default_rng(0)) == 1.0


def test_the_sliced_distance_sees_how_cells_vary_together_not_only_each_cell():
    generator = torch.Generator().manual_seed(0)
    draw = torch.Generator().manual_seed(1)
    shared = torch.randn(256, 1, 1, 1, generator=draw).expand(256, 2, 4, 4)  # cells together
    apart = torch.randn(256, 2, 4, 4, generator=draw)  # the same spread in each, independent
    other = torch.randn(256, 2, 4, 4, generator=draw)
    assert anatomy_gan.sliced_distance(shared, shared.flip(0), 64, generator) == 0
    same = anatomy_gan.sliced_distance(apart, other, 64, generator)
    assert anatomy_gan.sliced_distance(apart, shared, 64, generator) > 5 * same


def test_style_mixing_gives_later_layers_another_w(tiny_brain_run):
    recipe, _ = tiny_brain_run
    config = training.anatomy_config(recipe, "stylegan2")
    G = anatomy_gan.build_generator(config)
    z = torch.randn(3, config.z_dim)
    cond = torch.from_numpy(
        anatomy_gan.AnatomyData(None, np.full(3, 50.0), np.zeros(3, int)).conditions(np.arange(3))
    )
    mixed = [
        anatomy_gan._mixed_ws(G, z, cond, torch.Generator().manual_seed(seed)) for seed in range(20)
    ]
    plain = G.mapping(z, cond)
    crossed = [ws for ws in mixed if not torch.equal(ws, plain)]
    assert crossed, "style mixing never happened in 20 draws"
    for ws in crossed:
        assert torch.equal(ws[:, 0], plain[:, 0])
        assert not torch.equal(ws[:, -1], plain[:, -1])


def test_a_run_records_the_time_of_every_stage(tiny_brain_run):
    recipe, run = tiny_brain_run
    records = training.stage_records(recipe, run, "cgan")
    assert set(records) == {"autoencoder", "renderer", "segmenter", "detail", "anatomy"}
    for record in records.values():
        assert record["steps"] == 2
        assert record["cpu_seconds"] > 0


def test_an_unfinished_run_cannot_be_shipped_and_says_what_to_run(tiny_brain_run):
    recipe, run = tiny_brain_run
    with pytest.raises(FileNotFoundError, match="latent train brain-mri --architectures stylegan2"):
        training.trained_parts(recipe, run, "stylegan2")


def test_retraining_a_shipped_anatomy_gan_keeps_the_other_networks_and_drops_the_evaluation(
    shipped_cgan, tmp_path, monkeypatch
):
    recipe, path = shipped_cgan
    models, before = path.parent, load_latent_model(path)
    longer = replace(recipe, anatomy_steps={"stylegan2": 2, "cgan": 3})
    monkeypatch.setattr(latent_cli, "latent_recipe", lambda name: longer)
    argv = ["retrain-anatomy", "brain-mri", "--architecture", "cgan", "--workers", "1"]
    where = ["--models", str(models), "--runs", str(tmp_path / "runs")]
    assert latent_cli.main([*argv, *where]) == 0

    after = load_latent_model(path)  # the new card's sha256 holds
    for part in ("autoencoder", "detail", "renderer", "segmenter"):
        for name, value in getattr(before, part).state_dict().items():
            torch.testing.assert_close(
                getattr(after, part).state_dict()[name], value, rtol=0, atol=0
            )
    assert any(
        not torch.equal(value, before.anatomy.state_dict()[name])
        for name, value in after.anatomy.state_dict().items()
    )
    written = json.loads(card_path(path).read_text())
    stages = written["training"]["stages"]
    assert stages["anatomy"]["steps"] == 3
    assert {s: stages[s] for s in OLD_STAGES if s != "anatomy"} == {
        s: r for s, r in OLD_STAGES.items() if s != "anatomy"
    }
    assert written["training"]["wall_minutes"] == round(
        (4 * 60.0 + stages["anatomy"]["wall_seconds"]) / 60, 1
    )
    assert "evaluation" not in written
    assert not path.with_suffix(".report.md").exists()
    assert (models / "brain-mri-cgan.glioma.FLAIR.png").exists()


PARTS = ("autoencoder", "anatomy", "detail", "renderer", "segmenter")
OLD_STAGES = {s: {"steps": 2, "wall_seconds": 60.0, "cpu_seconds": 30.0} for s in training.STATES}


def _ship_evaluated(recipe, run, path, **extra):
    """The tiny run's cGAN shipped at ``path`` with an evaluated card and a report (and any
    ``extra`` parts)."""
    card = {
        "name": path.stem,
        "training": {"stages": OLD_STAGES, "wall_minutes": 5.0, "cpu_minutes": 2.5},
        "evaluation": {"figures": {}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_latent_model(
        path,
        domain=model.DOMAINS["brain-mri"],
        card=card,
        **training.trained_parts(recipe, run, "cgan"),
        **extra,
    )
    path.with_suffix(".report.md").write_text("the old figures")
    return path


@pytest.fixture
def shipped_cgan(tiny_brain_run, tmp_path, monkeypatch, plan_on_a_real_brain):
    """(recipe, path): the tiny run's cGAN shipped with an evaluated card in
    ``tmp_path/models``, sampled without the image check (the tiny segmenter finds nothing)."""
    monkeypatch.setattr(model, "MIN_DICE", -1.0)
    recipe, run = tiny_brain_run
    return recipe, _ship_evaluated(recipe, run, tmp_path / "models" / "brain-mri-cgan.pt")


def test_retraining_the_renderer_ships_it_into_every_model_that_shares_its_inputs(
    tiny_brain_run, tmp_path, monkeypatch, plan_on_a_real_brain
):
    monkeypatch.setattr(model, "MIN_DICE", -1.0)  # the tiny segmenter finds nothing
    recipe, run = tiny_brain_run
    models = tmp_path / "models"
    old_gain = lesion_gain.LesionGain(3)
    old_gain.gain.fill_(1.5)
    paths = [
        _ship_evaluated(recipe, run, models / f"brain-mri-{a}.pt", lesion_gain=old_gain)
        for a in ARCHITECTURES
    ]
    before = load_latent_model(paths[0])
    assert before.lesion_gain is not None
    longer = replace(recipe, renderer_steps=3)
    monkeypatch.setattr(latent_cli, "latent_recipe", lambda name: longer)
    argv = ["retrain-renderer", "brain-mri", "--workers", "1"]
    where = ["--models", str(models), "--runs", str(tmp_path / "runs")]
    assert latent_cli.main([*argv, *where]) == 0

    assert len(list((tmp_path / "runs").iterdir())) == 1  # one run for both
    shipped = [load_latent_model(path) for path in paths]
    for part in ("autoencoder", "detail", "anatomy", "segmenter"):
        for name, value in getattr(before, part).state_dict().items():
            for after in shipped:
                assert torch.equal(getattr(after, part).state_dict()[name], value)
    renderers = [after.renderer.state_dict() for after in shipped]
    assert all(torch.equal(renderers[0][k], renderers[1][k]) for k in renderers[0])
    assert any(not torch.equal(v, before.renderer.state_dict()[k]) for k, v in renderers[0].items())
    # The recipe draws without a gain, and the old one was fitted to the old renderer.
    assert all(after.lesion_gain is None for after in shipped)
    for path in paths:
        written = json.loads(card_path(path).read_text())
        assert written["training"]["stages"]["renderer"]["steps"] == 3
        assert written["training"]["stages"]["anatomy"] == OLD_STAGES["anatomy"]
        assert written["training"]["renderer_retrained"].startswith("on this model's own")
        assert "evaluation" not in written
        assert not path.with_suffix(".report.md").exists()
    assert (models / "brain-mri-stylegan2.glioma.T1c.png").exists()


def test_a_fitted_lesion_gain_multiplies_the_change_the_renderer_makes_in_every_model(
    tiny_brain_run, tmp_path, monkeypatch, plan_on_a_real_brain
):
    monkeypatch.setattr(model, "MIN_DICE", -1.0)  # the tiny segmenter finds nothing
    recipe, run = tiny_brain_run
    models = tmp_path / "models"
    paths = [_ship_evaluated(recipe, run, models / f"brain-mri-{a}.pt") for a in ARCHITECTURES]
    before = load_latent_model(paths[0])
    # The two-step renderer draws no lesion; here it draws each simulated lesion at half its
    # contrast, on a patient whose image is empty.
    real_fit = lesion_gain.fit_lesion_gain

    def fit_on_half(*args, images, **kwargs):
        drawn = (images * 0.5, np.zeros_like(images))
        monkeypatch.setattr(lesion_gain, "drawn_images", lambda *_: drawn)
        return real_fit(*args, images=images, **kwargs)

    monkeypatch.setattr(lesion_gain, "fit_lesion_gain", fit_on_half)
    monkeypatch.setattr(latent_cli, "latent_recipe", lambda name: replace(recipe, lesion_gain=True))
    argv = ["fit-lesion-gain", "brain-mri", "--workers", "1"]
    where = ["--models", str(models), "--runs", str(tmp_path / "runs")]
    assert latent_cli.main([*argv, *where]) == 0

    [folder] = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("brain-mri-lesion-gain-")
    for path in paths:
        after = load_latent_model(path)
        torch.testing.assert_close(after.lesion_gain.gain, torch.full((3,), 2.0))
        for part in PARTS:
            for name, value in getattr(before, part).state_dict().items():
                assert torch.equal(getattr(after, part).state_dict()[name], value)
        written = json.loads(card_path(path).read_text())
        assert written["training"]["lesion_gain"]["gain"] == {"T1": 2.0, "FLAIR": 2.0, "T1c": 2.0}
        assert written["training"]["lesion_gain"]["lesions"] >= 1
        assert written["training"]["stages"] == OLD_STAGES
        assert "evaluation" not in written
    request = {"age": 60.0, "sex": "F", "finding": "glioma", "severities": [0.0, 0.8], "seed": 4}
    z = z_from_seed(5, 1, before.z_dim)[0]
    plain, gained = before.series(z, **request), after.series(z, **request)
    np.testing.assert_array_equal(gained.clean[0], plain.clean[0])  # no lesion yet
    change = plain.clean[1] - plain.clean[0]
    assert np.abs(change).max() > 0.01
    wanted = np.clip(plain.clean[0] + 2 * change, 0, 1)
    np.testing.assert_allclose(gained.clean[1], wanted, atol=1e-5)


def test_the_lesion_gain_is_fitted_once_on_each_held_out_tracks_most_severe_lesion(
    tiny_brain_run, tmp_path, monkeypatch
):
    recipe, run = tiny_brain_run
    parts = training.trained_parts(recipe, run, "cgan")
    cohort = training.cohort_for(recipe, run, 1)
    fitted_on = []
    real_fit = lesion_gain.fit_lesion_gain

    def fit_on_half(*args, images, **kwargs):
        fitted_on.append(images)
        drawn = (images * 0.5, np.zeros_like(images))
        monkeypatch.setattr(lesion_gain, "drawn_images", lambda *_: drawn)
        return real_fit(*args, images=images, **kwargs)

    monkeypatch.setattr(lesion_gain, "fit_lesion_gain", fit_on_half)
    networks = (parts["autoencoder"], parts["detail"], parts["renderer"])
    gain = training.stage_lesion_gain(recipe, tmp_path, *networks, cohort)

    held_out = [
        t for t in np.unique(cohort.track[cohort.held_out]) if cohort.masks[cohort.track == t].any()
    ]
    assert held_out  # the tiny cohort holds out a glioma track
    most_severe = [np.flatnonzero(cohort.track == t)[-1] for t in held_out]  # severity rises
    [images] = fitted_on
    np.testing.assert_array_equal(images, cohort.clean[most_severe])
    torch.testing.assert_close(gain.gain, torch.full((3,), 2.0))
    record = training.lesion_gain_record(tmp_path)
    assert record["lesions"] == len(held_out)
    assert record["wall_seconds"] >= 0
    # Fitted once: called again, the stage reads what it fitted.
    monkeypatch.setattr(lesion_gain, "fit_lesion_gain", None)
    again = training.stage_lesion_gain(recipe, tmp_path, *networks, cohort)
    torch.testing.assert_close(again.gain, gain.gain)


def test_a_recipe_without_a_lesion_gain_refuses_to_fit_one(tiny_brain_run, tmp_path, capsys):
    recipe, run = tiny_brain_run
    path = _ship_evaluated(recipe, run, tmp_path / "models" / "brain-mri-cgan.pt")
    shipped = path.read_bytes()
    argv = ["fit-lesion-gain", "chest-radiograph", "--architectures", "cgan"]
    assert latent_cli.main([*argv, "--models", str(path.parent)]) == 2
    assert "draws its lesions without a gain" in capsys.readouterr().err
    assert path.read_bytes() == shipped


def test_models_that_do_not_share_an_autoencoder_cannot_share_a_retrained_renderer(
    tiny_brain_run, tmp_path, capsys
):
    recipe, run = tiny_brain_run
    models = tmp_path / "models"
    paths = [_ship_evaluated(recipe, run, models / f"brain-mri-{a}.pt") for a in ARCHITECTURES]
    other = load_latent_model(paths[1])
    with torch.no_grad():
        next(other.detail.parameters()).add_(1.0)
    save_latent_model(
        paths[1],
        domain=other.domain,
        card=other.card,
        **{p: getattr(other, p) for p in PARTS},
    )
    argv = ["retrain-renderer", "brain-mri", "--models", str(models)]
    assert latent_cli.main([*argv, "--runs", str(tmp_path / "runs")]) == 2
    assert "do not share their autoencoder and detail network" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_calibrating_a_shipped_model_maps_every_grid_its_anatomy_gan_draws(
    shipped_cgan, tmp_path, monkeypatch
):
    recipe, path = shipped_cgan
    models, before = path.parent, load_latent_model(path)
    # The tiny run has a handful of normal subjects; a calibration needs more than 512.
    rng = np.random.default_rng(0)
    subjects = anatomy_gan.AnatomyData(
        rng.standard_normal((600, 8, 32, 32)).astype(np.float32),
        rng.uniform(20, 80, 600).astype(np.float32),
        rng.integers(0, 2, 600),
    )
    monkeypatch.setattr(training, "normal_latents", lambda *args: subjects)
    monkeypatch.setattr(latent_cli, "latent_recipe", lambda name: recipe)
    argv = ["calibrate", "brain-mri", "--architecture", "cgan", "--workers", "1"]
    where = ["--models", str(models), "--runs", str(tmp_path / "runs")]
    assert latent_cli.main([*argv, *where]) == 0

    after = load_latent_model(path)
    assert before.calibration is None
    assert after.calibration is not None
    for part in PARTS:
        for name, value in getattr(before, part).state_dict().items():
            assert torch.equal(getattr(after, part).state_dict()[name], value)
    z = z_from_seed(3, 1, after.z_dim)[0]
    latent, _ = after.normal_latent(z, 40.0, "F")
    with torch.no_grad():
        cond = after.conditions(40.0, "F")
        grid = after.anatomy.synthesis_network(
            after.anatomy.mapping(torch.from_numpy(z[None]), cond), "const"
        )
        torch.testing.assert_close(latent, after.detail(after.calibration(grid, cond)))
        assert not torch.allclose(latent, after.detail(grid), atol=1e-3)
    written = json.loads(card_path(path).read_text())
    assert written["training"]["anatomy_calibration"]["training_grids"] == 600
    assert written["training"]["anatomy_calibration"]["drawn_grids"] == 2400
    assert written["training"]["stages"] == OLD_STAGES
    assert "evaluation" not in written
    assert not path.with_suffix(".report.md").exists()
    assert (models / "brain-mri-cgan.glioma.FLAIR.png").exists()


def test_a_calibration_on_too_few_subjects_is_refused_and_names_why(
    tiny_brain_run, tmp_path, monkeypatch, capsys
):
    recipe, run = tiny_brain_run
    models = tmp_path / "models"
    path = _ship_evaluated(recipe, run, models / "brain-mri-cgan.pt")
    shipped = path.read_bytes()
    monkeypatch.setattr(latent_cli, "latent_recipe", lambda name: recipe)
    argv = ["calibrate", "brain-mri", "--architecture", "cgan", "--workers", "1"]
    where = ["--models", str(models), "--runs", str(tmp_path / "runs")]
    assert latent_cli.main([*argv, *where]) == 2
    assert "needs more grids than cells" in capsys.readouterr().err
    assert path.read_bytes() == shipped


def test_a_shipped_model_given_an_anatomy_reader_plans_its_lesions_on_what_it_reads(
    shipped_cgan, tmp_path, monkeypatch
):
    recipe, path = shipped_cgan
    models, before = path.parent, load_latent_model(path)
    reading = replace(recipe, anatomy_reader_channels=(0,), anatomy_reader_edge=0.5)
    monkeypatch.setattr(latent_cli, "latent_recipe", lambda name: reading)
    monkeypatch.setattr(anatomy_reader, "FIT_SUBJECTS", 6)
    argv = ["train-anatomy-reader", "brain-mri", "--architecture", "cgan", "--workers", "1"]
    where = ["--models", str(models), "--runs", str(tmp_path / "runs")]
    assert latent_cli.main([*argv, *where]) == 0

    after = load_latent_model(path)
    assert before.anatomy_reader is None
    assert after.anatomy_reader.config.channels == (0,)
    for part in PARTS:
        for name, value in getattr(before, part).state_dict().items():
            assert torch.equal(getattr(after, part).state_dict()[name], value)
    [folder] = (tmp_path / "runs").iterdir()
    assert folder.name == "brain-mri-anatomy-reader"
    latent, _ = after.normal_latent(z_from_seed(3, 1, after.z_dim)[0], 40.0, "F")
    with torch.no_grad():
        image, decoded = after.autoencoder.decode(latent)
        read = after.anatomy_reader(image).clamp(min=0)[0, 0].numpy()
    planned_on = after.decoded_anatomy(latent)
    np.testing.assert_array_equal(planned_on[0], read)
    assert not np.allclose(planned_on[0], decoded[0, 0].numpy(), atol=1e-3)
    np.testing.assert_array_equal(planned_on[1:], decoded[0, 1:].numpy())
    written = json.loads(card_path(path).read_text())
    stages = written["training"]["stages"]
    assert {s: stages[s] for s in OLD_STAGES} == OLD_STAGES
    assert (stages["anatomy_reader"]["subjects"], stages["anatomy_reader"]["channels"]) == (
        6,
        ["csf"],
    )
    assert stages["anatomy_reader"]["steps"] == recipe.anatomy_reader_steps
    assert written["training"]["anatomy_reader_retrained"].startswith("on the simulation")
    assert written["training"]["wall_minutes"] == round(
        (5 * 60.0 + stages["anatomy_reader"]["wall_seconds"]) / 60, 1
    )
    assert "evaluation" not in written
    assert not path.with_suffix(".report.md").exists()


def test_a_reader_for_a_recipe_that_reads_no_anatomy_is_refused(shipped_cgan, tmp_path, capsys):
    _, path = shipped_cgan
    shipped = path.read_bytes()
    argv = ["train-anatomy-reader", "brain-mri", "--architecture", "cgan", "--workers", "1"]
    where = ["--models", str(path.parent), "--runs", str(tmp_path / "runs")]
    assert latent_cli.main([*argv, *where]) == 2
    assert "the recipe brain-mri reads no anatomy from its images" in capsys.readouterr().err
    assert path.read_bytes() == shipped


def test_retraining_a_model_that_is_not_there_names_the_missing_file(tmp_path, capsys):
    argv = ["retrain-anatomy", "brain-mri", "--architecture", "cgan", "--models", str(tmp_path)]
    assert latent_cli.main(argv) == 2
    assert f"{tmp_path / 'brain-mri-cgan.pt'} is missing" in capsys.readouterr().err


def test_the_bundle_loads_from_plain_tensors_and_checks_its_sha256(tiny_model, tmp_path):
    loaded = load_latent_model(tiny_model)
    assert loaded.card["name"] == "tiny-brain"
    assert loaded.domain.channels == ("T1", "FLAIR", "T1c")
    payload = torch.load(tiny_model, weights_only=True)  # no code in the file
    assert payload["format"] == model.FORMAT
    tampered = tmp_path / "tiny-brain.pt"
    tampered.write_bytes(tiny_model.read_bytes() + b"\0")
    tiny_model.with_suffix(".card.json").replace(tmp_path / "tiny-brain.card.json")
    try:
        with pytest.raises(ValueError, match="sha256"):
            load_latent_model(tampered)
    finally:
        (tmp_path / "tiny-brain.card.json").replace(tiny_model.with_suffix(".card.json"))


def _series(loaded, **overrides):
    request = {
        "age": 60.0,
        "sex": "F",
        "finding": "glioma",
        "severities": [0.3, 0.8],
        "seed": 4,
        "side": "left",
        "location": "frontal",
    }
    return loaded.series(z_from_seed(9, 1, loaded.z_dim)[0], **{**request, **overrides})


def test_a_patient_without_room_for_the_lesion_is_a_planning_error(tiny_model):
    loaded = load_latent_model(tiny_model)  # its decoder draws no deep white matter
    with pytest.raises(PlanningError, match="no deep white matter in the left frontal"):
        _series(loaded)
    assert loaded.rejections == 0


def test_an_untrained_segmenter_rejects_every_plan_and_counts_it(tiny_model, plan_on_a_real_brain):
    loaded = load_latent_model(tiny_model)
    loaded.segmenter.head.bias.data.fill_(-50.0)  # sees no lesion anywhere
    with pytest.raises(CaseRejected, match="image check"):
        _series(loaded)
    assert loaded.rejections == model.ATTEMPTS


def test_a_case_draws_its_side_once_so_rejected_plans_cannot_tilt_the_side_mix(
    tiny_model, plan_on_a_real_brain, monkeypatch
):
    loaded = load_latent_model(tiny_model)
    loaded.segmenter.head.bias.data.fill_(-50.0)  # rejects every plan
    planner = model.PLANNERS["brain-mri"]
    planned = []

    def recording(*args, **kwargs):
        plan = planner(*args, **kwargs)
        planned.append(plan.side)
        return plan

    monkeypatch.setitem(model.PLANNERS, "brain-mri", recording)
    drawn = set()
    for seed in range(6):
        planned.clear()
        with pytest.raises(CaseRejected):
            _series(loaded, seed=seed, side=None, location=None)
        assert len(planned) == model.ATTEMPTS
        assert len(set(planned)) == 1  # every attempt on the side the case drew
        drawn.add(planned[0])
    assert drawn == {"left", "right"}  # and the cases do not all draw one


def test_a_series_keeps_its_plan_as_ground_truth(tiny_model, plan_on_a_real_brain, monkeypatch):
    monkeypatch.setattr(model, "MIN_DICE", -1.0)  # judge the plan, not the tiny networks
    loaded = load_latent_model(tiny_model)
    series = _series(loaded)
    assert series.images.shape == (2, 3, 256, 256)
    assert (series.side, series.location) == ("left", "frontal")
    areas = series.masks.sum(axis=(1, 2))
    assert 0 < areas[0] < areas[1]
    assert [fact["side"] for fact in series.facts] == ["left", "left"]
    again = _series(loaded)
    np.testing.assert_array_equal(series.images, again.images)
    np.testing.assert_array_equal(series.masks, again.masks)


def test_a_normal_case_has_no_lesion_and_its_timepoints_share_the_anatomy(tiny_model):
    loaded = load_latent_model(tiny_model)
    series = _series(loaded, finding="normal", severities=[0.0, 0.0], side=None, location=None)
    assert not series.masks.any()
    assert series.facts == [{}, {}]
    assert np.abs(series.images[0] - series.images[1]).mean() < 0.05  # noise only


def test_a_normal_twin_is_the_same_patient_without_the_lesion(
    tiny_model, plan_on_a_real_brain, monkeypatch
):
    from genworker.sampling import SeriesSpec

    monkeypatch.setattr(model, "MIN_DICE", -1.0)  # judge the plan, not the tiny networks
    loaded = load_latent_model(tiny_model)
    # A renderer that draws nothing: what a lesion looks like is the trained renderer's,
    # which evaluation measures; here the two series must differ by acquisition noise only.
    drawing = loaded.renderer.out[-1]
    torch.nn.init.zeros_(drawing.weight)
    torch.nn.init.zeros_(drawing.bias)
    z = z_from_seed(9, 1, loaded.z_dim)[0]
    spec = SeriesSpec(z, "glioma", [0.3, 0.8], 60.0, "F", seed=4, side="left", location="frontal")
    case = loaded.progression(spec)
    twin = loaded.progression(replace(spec, z=case.z, severities=[0.0, 0.0]))
    np.testing.assert_array_equal(twin.z, case.z)
    assert case.masks[1].any()
    assert not twin.masks.any()
    assert twin.lesions == [{}, {}]
    assert np.abs(case.images[1] - twin.images[1]).mean() < 0.05


def test_a_timepoint_asked_for_at_severity_zero_shows_no_lesion(subject_anatomy):
    plan = model.PLANNERS["brain-mri"](
        subject_anatomy, "glioma", [0.0, 0.5], np.random.default_rng(0), side="left"
    )
    assert not plan.masks[0].any()
    assert not plan.maps[0].any()
    assert plan.severity[0] == 0
    assert plan.masks[1].any()
