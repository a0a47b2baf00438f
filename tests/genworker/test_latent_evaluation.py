"""The latent models' evaluation: each figure on constructed cases whose answer is known,
and the whole evaluation of a tiny model end to end."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import scipy.stats
import torch

from genworker.cohorts import brain_mri, chest_radiograph, sources
from genworker.latent import evaluation, feature_space, model, training
from genworker.latent.cli import main as latent_main
from genworker.latent.evaluation import CaseRecord
from genworker.latent.model import save_latent_model

R = 64  # constructed images are this size


def disc(centre: tuple[float, float], radius: float, size: int = R) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def record(**fields) -> CaseRecord:
    """A case record with neutral values besides ``fields``."""
    base = {
        "finding": "glioma",
        "severity": np.array([0.2, 0.5, 0.9], np.float32),
        "side": "left",
        "location": "frontal",
        "features": np.zeros((3, 4), np.float32),
        "small": np.zeros((3, 1, 8, 8), np.float16),
        "descriptor": np.zeros(4, np.float32),
        "dice": np.ones(3, np.float32),
        "mask_clean": np.ones(3, bool),
        "segmented_mm2": np.array([100.0, 400.0, 900.0], np.float32),
        "seen_side": "left",
        "seen_location": "frontal",
        "identity_ssim": 0.95,
        "identity_ssim_acquired": 0.8,
        "cnr": np.array([-2.0, 4.0, 3.0], np.float32),
    }
    return CaseRecord(**{**base, **fields})


def test_the_auc_is_the_share_of_positive_negative_pairs_ranked_right():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 40).astype(float)  # many ties
    labels = rng.random(40) < 0.4
    pairs = [
        1.0 if p > n else 0.5 if p == n else 0.0
        for p, n in itertools.product(scores[labels], scores[~labels])
    ]
    assert evaluation.auc(scores, labels) == pytest.approx(np.mean(pairs))
    with pytest.raises(ValueError, match="both classes"):
        evaluation.auc(scores, np.ones(40, bool))


def _image_cases(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[np.ndarray]:
    return [
        np.clip(0.4 + shift + 0.1 * rng.standard_normal((2, 1, 32, 32)), 0, 1).astype(np.float16)
        for _ in range(n)
    ]


def test_the_two_sample_classifier_cannot_tell_one_distribution_from_itself():
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    same = [
        evaluation.classifier_auc(_image_cases(rng, 40), _image_cases(rng, 40), seed=s)
        for s in range(3)
    ]
    assert abs(np.mean(same) - 0.5) < 0.1


def test_the_two_sample_classifier_tells_a_brighter_set_apart():
    torch.set_num_threads(1)
    rng = np.random.default_rng(2)
    shifted = evaluation.classifier_auc(
        _image_cases(rng, 40, shift=0.1), _image_cases(rng, 40), seed=0
    )
    assert shifted > 0.9


def test_the_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    rng = np.random.default_rng(3)

    def records(shift: float) -> list[CaseRecord]:
        return [
            record(features=(rng.standard_normal((3, 4)) + shift).astype(np.float32))
            for _ in range(60)
        ]

    simulated, reference = records(0.0), records(0.0)
    same = evaluation.distribution(simulated, simulated, reference)
    assert same["fd"] == pytest.approx(0.0, abs=1e-6)
    near = evaluation.distribution(records(0.0), simulated, reference)
    far = evaluation.distribution(records(1.0), simulated, reference)
    assert near["fd"] < 0.3
    assert far["fd"] == pytest.approx(4.0, rel=0.25)  # |shift|² = 4 over four features
    assert far["fd_ratio"] == pytest.approx(far["fd"] / far["fd_reference"])


def test_the_frechet_distance_within_each_finding_says_which_finding_is_off():
    rng = np.random.default_rng(5)

    def records(finding: str, n: int, shift: float = 0.0) -> list[CaseRecord]:
        return [
            record(
                finding=finding, features=(rng.standard_normal((3, 4)) + shift).astype(np.float32)
            )
            for _ in range(n)
        ]

    simulated = records("normal", 60) + records("effusion", 60)
    reference = records("normal", 60) + records("effusion", 60)
    generated = records("normal", 60) + records("effusion", 60, shift=1.0)
    figures = evaluation.distribution(generated, simulated, reference)
    assert figures["normal.fd"] < 0.3
    assert figures["effusion.fd"] == pytest.approx(4.0, rel=0.25)
    assert figures["effusion.fd_ratio"] > 10 * figures["normal.fd_ratio"]
    assert figures["effusion.fd_reference"] < 0.3
    # a finding the held-out simulation lacks has no distance of its own
    lone = evaluation.distribution(generated + records("nodule", 1), simulated, reference)
    assert "nodule.fd" not in lone
    assert lone["effusion.fd"] == pytest.approx(figures["effusion.fd"])


def test_the_set_figures_of_every_seed_are_the_whole_sets_not_a_resample():
    rng = np.random.default_rng(4)

    def records(shift: float, n: int) -> list[CaseRecord]:
        return [
            record(
                finding="nodule",
                features=(rng.standard_normal((3, 4)) + shift).astype(np.float32),
                descriptor=rng.standard_normal(4).astype(np.float32),
            )
            for _ in range(n)
        ]

    generated, simulated, reference = records(0.5, 40), records(0.0, 40), records(0.0, 40)
    whole = evaluation.distribution(generated, simulated, reference)
    copies = evaluation.memorisation(generated, simulated, reference)
    for seed in (0, 1):
        figures = evaluation.seed_figures(
            generated, simulated, reference, seed=seed, channels=["DX"], findings=["nodule"],
            classifier_epochs=1,
        )  # fmt: skip
        assert figures["fd"] == pytest.approx(whole["fd"])
        assert figures["fd_reference"] == pytest.approx(whole["fd_reference"])
        assert figures["nearest_training_ratio"] == pytest.approx(copies["nearest_training_ratio"])


BRAIN = disc((32, 32), 24)


def _brain_case(lesion: np.ndarray, *, timepoints: int = 2, seed: int = 0) -> tuple:
    """Images [T, 3, R, R] of a grey disc brain (:data:`BRAIN`) on a noisy dark background,
    the lesion brighter by 0.3 at the last timepoint, and the stored masks."""
    rng = np.random.default_rng(seed)
    clean = np.where(BRAIN, 0.5, 0.0)
    images = np.repeat(clean[None, None], timepoints, 0).repeat(3, 1)
    images[-1][:, lesion] += 0.3
    images = images + 0.02 * rng.standard_normal(images.shape)
    masks = np.zeros((timepoints, R, R), bool)
    masks[-1] = lesion
    return images.astype(np.float32), masks


class _Features:
    def embed(self, images: np.ndarray) -> np.ndarray:
        return images.mean(axis=(2, 3))


def _measure(
    images: np.ndarray, masks: np.ndarray, seen, clean=None, lesion_maps=None
) -> CaseRecord:
    if lesion_maps is None:  # no mass effect
        lesion_maps = np.zeros((len(images), 7, R // 2, R // 2), np.float32)
    return evaluation.measure_case(
        images, masks, np.linspace(0, 1, len(images)), images[0], finding="glioma",
        side="left", location="frontal", features=_Features(), seen=seen, cohort="brain-mri",
        anatomy=BRAIN[None].astype(np.float32), clean=images if clean is None else clean,
        lesion_maps=lesion_maps,
    )  # fmt: skip


def test_dice_compares_the_stored_mask_with_the_lesion_read_from_the_image():
    lesion = disc((32, 42), 6)
    images, masks = _brain_case(lesion)
    exact = _measure(images, masks, masks)
    assert np.isnan(exact.dice[0])
    assert exact.dice[1] == 1.0
    moved = np.roll(masks, 4, axis=2)
    found = _measure(images, masks, moved).dice[1]
    overlap = (moved[1] & lesion).sum()
    assert found == pytest.approx(2 * overlap / (2 * lesion.sum()))


def test_the_lesion_side_is_the_patients_not_the_viewers():
    # columns run from the patient's right to the patient's left
    images, masks = _brain_case(disc((32, 48), 5))
    case = _measure(images, masks, masks)
    assert case.seen_side == "left"
    images, masks = _brain_case(disc((32, 16), 5))
    assert _measure(images, masks, masks).seen_side == "right"


@pytest.mark.parametrize(
    ("lesion", "clean"),
    [
        (disc((32, 40), 6), True),
        (disc((32, 40), 4) | disc((32, 20), 4), False),  # two pieces
        (disc((32, 55), 6), False),  # reaches outside the body
        (disc((0, 32), 5), False),  # touches the border
    ],
)
def test_a_clean_mask_is_one_piece_inside_the_body_off_the_border(lesion, clean):
    images, masks = _brain_case(lesion)
    assert _measure(images, masks, masks).mask_clean[-1] == clean


def test_a_mask_is_inside_the_brain_as_the_tumours_mass_effect_moved_it():
    # The brain (centre column 32, radius 24) reaches column 56; the lesion reaches 61.
    lesion = disc((32, 55), 6)
    images, masks = _brain_case(lesion)
    assert not _measure(images, masks, masks).mask_clean[-1]
    maps = np.zeros((2, 7, R // 2, R // 2), np.float32)
    maps[-1, -1] = -6 / R  # the last timepoint reads every pixel 6 columns to its left
    assert _measure(images, masks, masks, lesion_maps=maps).mask_clean[-1]
    assert not brain_mri.body_masks(BRAIN[None].astype(np.float32), maps)[0, 32, 57]
    assert brain_mri.body_masks(BRAIN[None].astype(np.float32), maps)[1, 32, 61]


def test_identity_is_one_outside_the_lesion_and_falls_when_the_anatomy_changes():
    lesion = disc((32, 40), 6)
    images, masks = _brain_case(lesion)
    images[1] = images[0]
    images[1][:, lesion] += 0.3  # only the lesion differs: the same noise elsewhere
    assert evaluation.identity_ssim(images, masks, BRAIN, margin_px=3) == pytest.approx(1.0)
    images[1][:, 10:30, 20:40] = 0.2
    assert evaluation.identity_ssim(images, masks, BRAIN, margin_px=3) < 0.9


def test_identity_is_the_anatomys_not_the_noise_of_each_acquisition():
    lesion = disc((32, 40), 6)
    noisy, masks = _brain_case(lesion, timepoints=3)
    clean = np.repeat(np.where(disc((32, 32), 24), 0.5, 0.0)[None, None], 3, 0).repeat(3, 1)
    clean[:, :, lesion] += 0.3
    case = _measure(noisy, masks, masks, clean=clean.astype(np.float32))
    assert case.identity_ssim == pytest.approx(1.0)
    assert case.identity_ssim_acquired < 0.95  # the same anatomy under fresh noise


def test_contrast_to_noise_is_the_lesion_step_over_the_images_noise():
    lesion = disc((32, 40), 8)
    images, masks = _brain_case(lesion, seed=4)
    clean = np.where(BRAIN, 0.5, 0.0) + np.where(lesion, 0.3, 0.0)
    cnr = evaluation.contrast_to_noise(images[-1], clean[None], masks[-1], BRAIN, ring_px=4)
    # the image is its clean self plus N(0, 0.02): the step 0.3 over 0.02 is 15
    np.testing.assert_allclose(cnr, 15.0, rtol=0.1)
    quieter = clean + 0.5 * (images[-1] - clean)
    np.testing.assert_allclose(
        evaluation.contrast_to_noise(quieter, clean[None], masks[-1], BRAIN, ring_px=4),
        2 * cnr, rtol=0.1,
    )  # fmt: skip


def test_progression_follows_the_segmented_size_along_each_series():
    growing = [record(segmented_mm2=np.array(a, np.float32)) for a in ([10, 20, 40], [5, 30, 60])]
    found = evaluation.progression(growing, max_area_mm2=100.0)
    assert found["monotone_share"] == 1.0
    shrinking = record(segmented_mm2=np.array([40, 20, 10], np.float32))
    found = evaluation.progression([*growing, shrinking], max_area_mm2=100.0)
    assert found["monotone_share"] == pytest.approx(2 / 3)
    pairs = np.r_[[10, 20, 40], [5, 30, 60], [40, 20, 10]]
    severities = np.tile([0.2, 0.5, 0.9], 3)
    assert found["spearman"] == pytest.approx(scipy.stats.spearmanr(severities, pairs).statistic)


def test_the_side_test_passes_one_mix_and_fails_a_one_sided_model():
    half = [record(seen_side=s) for s in ["left", "right"] * 50]
    assert evaluation.placement_test(half, half, "seen_side") == pytest.approx(1.0)
    one_sided = [record(seen_side="left") for _ in range(100)]
    assert evaluation.placement_test(one_sided, half, "seen_side") < 1e-6
    table = np.array([[100, 0], [50, 50]])
    assert evaluation.placement_test(one_sided, half, "seen_side") == pytest.approx(
        scipy.stats.chi2_contingency(table).pvalue
    )


def test_memorisation_finds_copies_of_training_patients():
    rng = np.random.default_rng(5)

    def patients(n: int) -> list[CaseRecord]:
        return [record(descriptor=rng.standard_normal(16).astype(np.float32)) for _ in range(n)]

    training_set, held_out = patients(50), patients(50)
    copies = [record(descriptor=r.descriptor + 1e-3) for r in training_set]
    found = evaluation.memorisation(copies, held_out, training_set)
    assert found["nearest_training_ratio"] < 0.01
    assert found["nearer_than_held_out_share"] == 1.0
    fresh = evaluation.memorisation(patients(50), held_out, training_set)
    assert 0.8 < fresh["nearest_training_ratio"] < 1.25
    assert fresh["nearer_than_held_out_share"] < 0.1


def test_figures_combine_to_mean_and_sample_sd_over_seeds():
    combined = evaluation.combine([{"a": 1.0, "c": np.nan}, {"a": 3.0, "b": 2.0}])
    assert combined["a"]["mean"] == 2.0
    assert combined["a"]["sd"] == pytest.approx(np.sqrt(2))
    assert combined["b"] == {"mean": 2.0, "sd": None, "by_seed": [None, 2.0]}  # not at one seed
    assert combined["c"] == {"mean": None, "sd": None, "by_seed": [None, None]}  # undefined
    rows = {row["figure"]: row for row in evaluation.check_targets(combined, ["glioma"])}
    assert rows["glioma.dice"]["met"] is None
    assert rows["c2st_auc"]["met"] is None


def test_targets_hold_for_each_finding_and_for_the_set():
    figures = evaluation.combine([
        {"nodule.dice": 0.9, "effusion.dice": 0.7, "c2st_auc": 0.6},
    ])  # fmt: skip
    rows = {row["figure"]: row for row in evaluation.check_targets(figures, ["nodule", "effusion"])}
    assert rows["nodule.dice"]["met"] is True
    assert rows["effusion.dice"]["met"] is False
    assert rows["c2st_auc"]["met"] is True
    assert "dice" not in rows


def test_cases_made_are_counted_by_the_severity_their_lesion_starts_at():
    conditions = [
        {"finding": "nodule", "severities": [0.0, 0.33, 0.6]},  # starts at 0.33
        {"finding": "nodule", "severities": [0.4, 0.9]},
        {"finding": "nodule", "severities": [0.8, 1.0]},
        {"finding": "effusion", "severities": [0.1, 0.5]},
        {"finding": "normal", "severities": [0.0]},
    ]
    table = evaluation.yield_by_start(conditions, [False, True, True, True, True])
    assert table == {
        "nodule": {
            "0.30-0.40": {"made": 0, "asked": 1},
            "0.40-0.50": {"made": 1, "asked": 1},
            "0.80-0.90": {"made": 1, "asked": 1},
        },
        "effusion": {"0.10-0.20": {"made": 1, "asked": 1}},
    }


def test_each_lesion_finding_gets_as_many_fresh_subjects_and_normals_half_that():
    subjects = evaluation.fresh_subjects("chest-radiograph", 7, 4, 3)
    findings = [chest_radiograph.FINDINGS[s.finding] for s in subjects]
    assert findings == ["nodule"] * 4 + ["effusion"] * 4 + ["normal"] * 2
    assert [s.index for s in subjects] == list(range(10))
    assert {s.timepoints for s in subjects[:8]} == {3}
    assert {s.timepoints for s in subjects[8:]} == {1}


def test_per_finding_figures_are_measured_on_that_findings_cases_only():
    nodules = [record(finding="nodule", dice=np.full(3, 0.9, np.float32)) for _ in range(20)]
    effusions = [record(finding="effusion", dice=np.full(3, 0.6, np.float32)) for _ in range(20)]
    cases = nodules + effusions
    figures = evaluation.seed_figures(
        cases, cases, cases, seed=0, channels=["DX"], findings=["nodule", "effusion"],
        classifier_epochs=1,
    )  # fmt: skip
    assert figures["nodule.dice"] == pytest.approx(0.9)
    assert figures["effusion.dice"] == pytest.approx(0.6)
    assert figures["effusion.dice_simulation"] == pytest.approx(0.6)


needs_anatomy = pytest.mark.skipif(
    not sources.is_fetched("antspyx"),
    reason=f"the antspyx anatomy is not fetched (run `{sources.FETCH_COMMAND}`)",
)


@pytest.fixture(scope="module")
def tiny_models(tiny_brain_run, tmp_path_factory):
    """A brain model trained two steps per stage and a feature space trained a few steps,
    in one models folder, as `latent ship` and `latent features` leave them."""
    torch.set_num_threads(1)
    recipe, run = tiny_brain_run
    parts = training.trained_parts(recipe, run, "cgan")
    models = tmp_path_factory.mktemp("models")
    save_latent_model(
        models / "brain-mri-cgan.pt",
        domain=model.DOMAINS["brain-mri"],
        card={"name": "brain-mri-cgan"},
        **parts,
    )
    subjects = evaluation.fresh_subjects("brain-mri", 1, 2, 2)
    data = feature_space.FeatureData.of(list(evaluation.simulate(subjects, 1)))
    config = feature_space.FeatureSpaceConfig(image_channels=3, anatomy_channels=3)
    net = feature_space.train_feature_space(data, config, brain_mri.acquire, steps=3, seed=0)
    feature_space.save_feature_space(net, models / "brain-mri.features.pt", {"steps": 3})
    return models


@pytest.fixture
def plans_on_a_real_brain(monkeypatch):
    """The tiny decoder draws no brain to plan in: plan on a simulated subject's; and keep
    every plan (the tiny segmenter finds nothing)."""
    tissue = brain_mri.draw_subject(np.random.default_rng(2), 60.0, 0).tissue
    plan = model.PLANNERS["brain-mri"]
    monkeypatch.setitem(model.PLANNERS, "brain-mri", lambda _a, *a, **k: plan(tissue, *a, **k))
    monkeypatch.setattr(model, "MIN_DICE", -1.0)


@needs_anatomy
def test_a_tiny_model_is_evaluated_into_its_card_and_report(tiny_models, plans_on_a_real_brain):
    argv = ["evaluate", "brain-mri", "--architecture", "cgan", "--models", str(tiny_models)]
    assert latent_main([*argv, "--cases", "2", "--seeds", "2", "--timepoints", "2"]) == 0
    card = json.loads((tiny_models / "brain-mri-cgan.card.json").read_text())
    result = card["evaluation"]
    # each seed its own generation of two lesion series and one normal case
    assert result["cases"]["generations"] == 2
    assert (result["cases"]["asked"], result["cases"]["generated"]) == (6, 6)
    figures = result["figures"]
    assert len(figures["c2st_auc"]["by_seed"]) == 2
    assert 0.0 <= figures["c2st_auc"]["mean"] <= 1.0
    assert figures["fd"]["mean"] > 0
    assert figures["fd_reference"]["mean"] > 0
    # the simulation segmented by an untrained segmenter: the reference figures exist too
    assert "glioma.dice_simulation" in figures
    assert "glioma.identity_ssim_simulation" in figures
    assert result["cases"]["lesion_series"] == {"glioma": 4}
    started = result["cases"]["made_by_start"]["glioma"]
    assert sum(counts["asked"] for counts in started.values()) == 4
    report = (tiny_models / "brain-mri-cgan.report.md").read_text()
    assert "latent evaluate brain-mri --architecture cgan" in report
    assert "| c2st_auc | <= 0.8 |" in report
    assert "| glioma.dice | >= 0.85 |" in report
    assert "6 of 6 cases generated over 2 generations (" in report
    assert "## Glioma" in report
    assert "## Cases made by the severity they start at" in report
    assert figures["glioma.fd_ratio"]["mean"] > 0
    assert "normal.fd" not in figures  # one normal image a set: no covariance
    assert "## Fréchet distance by finding" in report
    assert "| glioma | " in report
    model.load_latent_model(tiny_models / "brain-mri-cgan.pt")  # the card's sha256 still holds


@needs_anatomy
def test_yield_counts_the_cases_a_model_makes_at_each_severity(
    tiny_models, plans_on_a_real_brain, monkeypatch, capsys
):
    path = str(tiny_models / "brain-mri-cgan.pt")
    ask = ["yield", path, "--finding", "glioma", "--severities", "0.3", "0.8", "--patients", "2"]
    assert latent_main(ask) == 0
    out = capsys.readouterr().out
    assert "glioma at severity 0.3: 2 of 2 cases made, 2 on their first plan" in out
    assert "glioma at severity 0.8: 2 of 2 cases made" in out
    monkeypatch.setattr(model, "MIN_DICE", 2.0)  # no image can pass: every plan is rejected
    assert latent_main([*ask[:4], "--severities", "0.5", "--patients", "1"]) == 0
    assert (
        "glioma at severity 0.5: 0 of 1 cases made, 0 on their first plan"
        in capsys.readouterr().out
    )
    assert latent_main([*ask[:3], "normal", "--severities", "0.5"]) == 2
    assert "finding must be one of ['glioma']" in capsys.readouterr().err


def test_evaluate_names_the_command_that_makes_a_missing_feature_space(tmp_path, capsys):
    (tmp_path / "brain-mri-cgan.pt").write_bytes(b"")
    argv = ["evaluate", "brain-mri", "--architecture", "cgan", "--models", str(tmp_path)]
    assert latent_main(argv) == 2
    assert "latent features brain-mri" in capsys.readouterr().err
