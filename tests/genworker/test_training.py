"""Training: it learns the toy cohort, and a stopped run resumes bit for bit."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from genworker import training
from genworker.checkpoint import load_generator, load_training_state
from genworker.networks import build_generator
from genworker.sampling import to_pictures
from genworker.training import train
from tests.toy_cohort import disc_cohort
from tests.toy_training import TOY_BATCH, TOY_STEPS, toy_config

# The resume tests use a smaller network and cohort still: only equality matters there.
STEPS = 20  # past step 16, so a lazy R1 step falls inside the resumed part
SMALL = {"z_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 16, "mapping_layers": 1}
RUN = {"batch_size": 4, "seed": 3, "checkpoint_every": 5, "progress": False}
# Everything a resumed run must reproduce; "seconds" (wall time) is the one thing that may differ.
EXACT_KEYS = ("G", "D", "G_ema", "opt_G", "opt_D", "rng", "step", "images_seen", "history")


@pytest.fixture(scope="module")
def small_cohort():
    return disc_cohort(resolution=16, n_tracks=8, seed=2)


def run_small(cohort, out_dir, **changes):
    return train(cohort, config=toy_config(**SMALL), out_dir=out_dir, **{**RUN, **changes})


@pytest.fixture(scope="module")
def uninterrupted(small_cohort, tmp_path_factory, one_torch_thread):
    result = run_small(small_cohort, tmp_path_factory.mktemp("uninterrupted"), steps=STEPS)
    return load_training_state(result.state_path), result


def assert_identical(saved, expected, where="state"):
    """Tensors equal bit for bit, everything else equal, through nested dicts and lists."""
    if isinstance(expected, torch.Tensor):
        assert torch.equal(saved, expected), f"{where} differs"
    elif isinstance(expected, dict):
        assert saved.keys() == expected.keys(), f"{where} has other keys"
        for key in expected:
            assert_identical(saved[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, list | tuple):
        assert len(saved) == len(expected), f"{where} has another length"
        for i, (a, b) in enumerate(zip(saved, expected, strict=True)):
            assert_identical(a, b, f"{where}[{i}]")
    else:
        assert saved == expected or (saved != saved and expected != expected), f"{where} differs"


def assert_same_run(state_path, expected_state):
    state = load_training_state(state_path)
    for key in EXACT_KEYS:
        assert_identical(state[key], expected_state[key], key)


def assert_same_export(export_path, expected_export_path):
    exported, expected = load_generator(export_path), load_generator(expected_export_path)
    assert_identical(exported.generator.state_dict(), expected.generator.state_dict(), "export")
    assert exported.directions.keys() == expected.directions.keys()
    for finding, vector in expected.directions.items():
        np.testing.assert_array_equal(exported.directions[finding], vector)


def mean_picture_error(generator, cohort) -> float:
    """Mean absolute difference between the mean generated and the mean real picture,
    generating one image per training image with its conditions."""
    part = cohort.train()
    cond = generator.schema.encode(part.finding, part.severity, part.age, part.sex)
    pictures, _ = to_pictures(generator.sample(cond, seed=1))
    return float(np.abs(pictures.mean(axis=0) - part.images.mean(axis=0)).mean())


def test_brief_training_lowers_the_discriminator_loss_and_learns_the_cohort(toy_training):
    result, cohort, config = toy_training.result, toy_training.cohort, toy_training.config
    history = result.history
    assert result.finished
    assert result.step == TOY_STEPS
    assert result.images_seen == TOY_STEPS * TOY_BATCH
    assert history["step"] == list(range(1, TOY_STEPS + 1))
    loss_d = np.asarray(history["loss_D"])
    assert np.all(np.isfinite(loss_d))
    assert loss_d[-25:].mean() < 0.9 * loss_d[:25].mean()
    # Lazy R1: computed on every 16th discriminator step only.
    r1_steps = [s for s, r1 in zip(history["step"], history["r1"], strict=True) if r1 == r1]
    assert r1_steps == list(range(1, TOY_STEPS + 1, training.R1_INTERVAL))

    torch.manual_seed(0)  # the same initial weights as the run with seed 0
    untrained = build_generator(config).eval()
    trained = load_generator(result.export_path).generator
    assert mean_picture_error(trained, cohort) < 0.7 * mean_picture_error(untrained, cohort)


def test_the_export_carries_the_training_in_its_model_card(toy_training):
    card = load_generator(toy_training.result.export_path).card
    assert card["training"]["steps"] == TOY_STEPS
    assert card["training"]["images_seen"] == TOY_STEPS * TOY_BATCH
    assert card["training"]["finished"] is True
    assert card["cohort"]["name"] == "toy-discs"
    assert card["cohort"]["findings_with_severity"] == ["lesion"]
    assert card["licence"] == "CC0-1.0"


def test_a_stopped_and_resumed_run_equals_an_uninterrupted_one(
    small_cohort, tmp_path, uninterrupted
):
    expected_state, expected = uninterrupted
    first = run_small(small_cohort, tmp_path, steps=7)
    assert first.step == 7
    second = run_small(small_cohort, tmp_path, steps=STEPS, resume=True)
    assert second.step == STEPS
    assert second.finished
    assert_same_run(second.state_path, expected_state)
    assert_same_export(second.export_path, expected.export_path)


def test_a_run_stopped_by_its_time_budget_resumes_exactly(
    small_cohort, tmp_path, monkeypatch, uninterrupted
):
    expected_state, expected = uninterrupted
    ticks = iter(range(10_000))  # a clock that advances one second per reading
    monkeypatch.setattr(training, "time", SimpleNamespace(monotonic=lambda: float(next(ticks))))
    stopped = run_small(small_cohort, tmp_path, steps=STEPS, max_minutes=3.5 / 60)
    assert not stopped.finished
    assert 0 < stopped.step < STEPS
    assert load_generator(stopped.export_path).card["training"]["finished"] is False
    assert load_training_state(stopped.state_path)["step"] == stopped.step

    monkeypatch.undo()
    resumed = run_small(small_cohort, tmp_path, steps=STEPS, resume=True)
    assert resumed.finished
    assert_same_run(resumed.state_path, expected_state)
    assert_same_export(resumed.export_path, expected.export_path)


def test_snapshots_keep_the_ema_generator_every_few_kimg_and_at_the_end(
    small_cohort, tmp_path, uninterrupted
):
    expected_state, _ = uninterrupted
    every = 0.024  # kimg: 6 steps of 4 images
    run_small(small_cohort, tmp_path, steps=7, snapshot_kimg=every)
    run_small(small_cohort, tmp_path, steps=STEPS, resume=True, snapshot_kimg=every)
    snapshots = [load_training_state(path) for path in training.snapshots(tmp_path)]
    # Step 7 is where the first call stopped.
    assert [s["step"] for s in snapshots] == [6, 7, 12, 18, STEPS]
    assert [s["finished"] for s in snapshots] == [False, True, False, False, True]
    assert "opt_G" not in snapshots[0]  # only what an export needs
    assert_identical(snapshots[-1]["G_ema"], expected_state["G_ema"], "last snapshot")

    training.export_generator(training.snapshots(tmp_path)[2], tmp_path / "at-12.pt")
    card = load_generator(tmp_path / "at-12.pt").card
    assert card["training"]["steps"] == 12
    assert card["training"]["finished"] is False


def test_an_existing_state_is_not_overwritten_without_resume(small_cohort, tmp_path):
    first = run_small(small_cohort, tmp_path, steps=2)
    before = first.state_path.read_bytes()
    with pytest.raises(FileExistsError, match="resume=True"):
        run_small(small_cohort, tmp_path, steps=2)
    assert first.state_path.read_bytes() == before


def test_resuming_with_other_settings_is_refused(small_cohort, tmp_path):
    first = run_small(small_cohort, tmp_path, steps=2)
    before = first.state_path.read_bytes()
    with pytest.raises(ValueError, match="cannot resume: the options differ"):
        run_small(small_cohort, tmp_path, steps=4, resume=True, batch_size=8)
    other_cohort = disc_cohort(resolution=16, n_tracks=8, seed=5)
    with pytest.raises(ValueError, match="cannot resume: the cohort differs"):
        run_small(other_cohort, tmp_path, steps=4, resume=True)
    assert first.state_path.read_bytes() == before


def test_the_length_is_given_once(small_cohort, tmp_path):
    with pytest.raises(ValueError, match="exactly one of kimg and steps"):
        run_small(small_cohort, tmp_path, steps=2, kimg=1.0)
    with pytest.raises(ValueError, match="exactly one of kimg and steps"):
        run_small(small_cohort, tmp_path)
    with pytest.raises(ValueError, match="snapshot_kimg must be positive"):
        run_small(small_cohort, tmp_path, steps=2, snapshot_kimg=0)
    assert not (tmp_path / training.STATE_FILE).exists()


def test_the_soft_lesion_share_of_a_binary_mask_is_its_share_of_pixels():
    mask = torch.zeros(3, 16, 16)
    mask[1, :4, :4] = 1  # 16 of 256 pixels
    mask[2] = 1
    images = torch.stack([torch.zeros_like(mask), mask * 2 - 1], dim=1)
    shares = training.soft_lesion_share(images)
    np.testing.assert_allclose(shares.numpy(), [0.0, 16 / 256, 1.0], atol=1e-3)


def test_the_lesion_burden_term_teaches_masks_their_size(small_cohort, tmp_path, one_torch_thread):
    result = run_small(small_cohort, tmp_path, steps=60, lesion_weight=1.0, batch_size=8)
    lesion = np.array(result.history["lesion"])
    assert np.isfinite(lesion).all()
    assert lesion[-10:].mean() < 0.5 * lesion[:10].mean()
    plain = run_small(small_cohort, tmp_path / "plain", steps=2)
    assert np.isnan(plain.history["lesion"]).all()


@pytest.mark.parametrize("term", ["lesion_weight", "identity_weight", "monotone_weight"])
def test_the_mask_terms_need_a_mask_channel(small_cohort, tmp_path, term):
    with pytest.raises(ValueError, match="lesion-mask channel"):
        train(
            small_cohort,
            config=toy_config(**SMALL, img_channels=1),
            out_dir=tmp_path,
            steps=2,
            **{term: 1.0},
            **RUN,
        )


def toy_series(generator, severities, n) -> list[tuple[np.ndarray, np.ndarray]]:
    """(images, masks) of the same n z at each severity of the toy's "lesion" finding."""
    pictures = []
    for severity in severities:
        cond = generator.schema.encode(np.full(n, 1), severity, 50.0, 0)
        pictures.append(to_pictures(generator.sample(cond, seed=4)))
    return pictures


def trained_without_and_with(cohort, tmp_path, term: str) -> dict[float, tuple]:
    """{weight: (generator, training result)} for ``term`` at weight 0 and 10."""
    trained = {}
    for weight in (0.0, 10.0):
        result = run_small(cohort, tmp_path / str(weight), steps=80, **{term: weight})
        trained[weight] = load_generator(result.export_path).generator, result
    return trained


def change_outside_lesion(generator) -> float:
    """Mean absolute change of the image outside both masks between two severities of the
    same z."""
    (first, first_masks), (last, last_masks) = toy_series(generator, (0.1, 0.9), n=16)
    outside = ~(first_masks | last_masks)
    return float(np.abs(first - last)[outside].mean())


def test_the_identity_term_holds_the_image_outside_the_lesion(
    small_cohort, tmp_path, one_torch_thread
):
    trained = trained_without_and_with(small_cohort, tmp_path, "identity_weight")
    changes = {
        weight: change_outside_lesion(generator) for weight, (generator, _) in trained.items()
    }
    identity = np.array(trained[10.0][1].history["identity"])
    assert identity[-10:].mean() < 0.5 * identity[:10].mean()  # the term is learnt
    assert changes[10.0] < 0.75 * changes[0.0]  # and a series changes less outside its lesion


def test_the_diversity_shortfall_rewards_distance_only_up_to_two_subjects():
    first = torch.zeros(4, 2, 8, 8, requires_grad=True)
    assert training.diversity_shortfall(first, first.detach(), 0.5).item() == 1.0
    assert training.diversity_shortfall(first, torch.full_like(first, 0.25), 0.5).item() == 0.5
    (gradient,) = torch.autograd.grad(
        training.diversity_shortfall(first, torch.full_like(first, 0.25), 0.5), first
    )
    assert (gradient > 0).all()  # descending it moves first away from second
    farther = torch.full_like(first, 0.75)
    assert training.diversity_shortfall(first, farther, 0.5).item() == 0.0
    (gradient,) = torch.autograd.grad(training.diversity_shortfall(first, farther, 0.5), first)
    assert (gradient == 0).all()  # no reward for more spread than the cohort has


def test_the_mode_seeking_term_is_trained_and_needs_two_images_of_a_finding(small_cohort, tmp_path):
    result = run_small(small_cohort, tmp_path / "ok", steps=2, mode_seeking_weight=1.0)
    assert all(0 <= value <= 1 for value in result.history["mode_seeking"])
    one_image = small_cohort.subset(np.flatnonzero(~small_cohort.held_out)[:1])
    with pytest.raises(ValueError, match="two different training images"):
        run_small(one_image, tmp_path / "one", steps=2, mode_seeking_weight=1.0)


def test_lesion_shrinkage_is_the_share_of_the_lesion_lost_as_severity_rises():
    lower = torch.tensor([0.2, 0.1, 0.001, 0.0], requires_grad=True)
    higher = torch.tensor([0.1, 0.3, 0.0, 0.0])
    shrinkage = training.lesion_shrinkage(lower, higher, floor=0.01)
    assert shrinkage.item() == pytest.approx((0.5 + 0 + 0.1 + 0) / 4)  # 0.001 counts as 0.01
    (gradient,) = torch.autograd.grad(shrinkage, lower)
    assert gradient.tolist() == pytest.approx([1 / 0.8, 0.0, 1 / 0.04, 0.0])  # growth is free


def shrinking_share(generator) -> float:
    """Mean share of pixels by which the mask of one z shrinks from one severity to the
    next, summed along a series."""
    series = toy_series(generator, (0.1, 0.3, 0.5, 0.7, 0.9), n=32)
    shares = [masks.mean(axis=(1, 2)) for _, masks in series]
    return float(np.maximum(-np.diff(shares, axis=0), 0).sum(axis=0).mean())


def test_the_monotone_term_keeps_the_lesion_from_shrinking(
    small_cohort, tmp_path, one_torch_thread
):
    trained = trained_without_and_with(small_cohort, tmp_path, "monotone_weight")
    shrinking = {weight: shrinking_share(generator) for weight, (generator, _) in trained.items()}
    assert np.isfinite(trained[10.0][1].history["monotone"]).all()
    assert shrinking[10.0] < 0.5 * shrinking[0.0]


def test_mixed_precision_trains_every_term(small_cohort, tmp_path):
    """The GPU's bf16 path, run on the CPU (CPU autocast) so that a GPU session does not meet
    it first: every term of the GPU recipes trains with finite losses, and the run differs
    from the same run in fp32 (autocast was on)."""
    terms = {"lesion_weight": 1.0, "identity_weight": 1.0, "mode_seeking_weight": 1.0}
    runs = {
        amp: run_small(small_cohort, tmp_path / str(amp), steps=3, mixed_precision=amp, **terms)
        for amp in (False, True)
    }
    for key in ("loss_G", "loss_D", "lesion", "identity", "mode_seeking"):
        assert np.isfinite(runs[True].history[key]).all(), key
    assert runs[True].history["loss_G"] != runs[False].history["loss_G"]


def test_compiled_training_traces_every_step_and_changes_nothing_else(
    small_cohort, tmp_path, monkeypatch, one_torch_thread
):
    """``compiled=True`` sends all but the R1 steps through torch.compile. Compiled by
    TorchDynamo with its eager backend (tracing without code generation: seconds, not the
    minutes inductor takes on a CPU), the run must equal the uncompiled one bit for bit,
    every term and an R1 step included; graphs must have been captured. Inductor's own
    kernels round differently, so that comparison would not be exact."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    torch._dynamo.reset()
    counters.clear()
    terms = {"lesion_weight": 1.0, "identity_weight": 1.0, "mode_seeking_weight": 1.0}
    plain = run_small(small_cohort, tmp_path / "plain", steps=STEPS, **terms)
    assert counters["stats"]["unique_graphs"] == 0
    compiled = run_small(small_cohort, tmp_path / "compiled", steps=STEPS, compiled=True, **terms)
    assert counters["stats"]["unique_graphs"] >= 3  # synthesis; D with and without its grads
    assert_same_run(compiled.state_path, load_training_state(plain.state_path))
