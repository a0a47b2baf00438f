"""evaluate() with stand-in generators whose quality is known by construction."""

import json

import numpy as np
import pytest
import torch

from genworker.checkpoint import LoadedGenerator
from genworker.conditions import ConditionSchema
from genworker.evaluation import (
    FD_DRAWS,
    MemorisationReference,
    evaluate,
    write_report,
)
from genworker.evaluation_seeds import evaluate_over_seeds
from genworker.features import train_feature_net
from genworker.networks import GeneratorConfig, build_generator
from tests import toy_cohort as toy
from tests.toy_cohort import FINDINGS, TWO_FINDINGS, disc_cohort, lesion_radius

RESOLUTION = 16
SIZES = {"n_generated": 60, "n_series": 8, "timepoints": 5, "seed": 0}


class DiscGenerator:
    """Draws the toy cohort's subjects from (z, condition), like a perfectly trained model.

    w = [body half-axes (2), lesion centre offset (2), severity, one-hot finding]; z picks
    the subject through the normal CDF, so subjects are spread as in the cohort.
    Findings in ``ignores_severity_of`` are drawn at severity 0 whatever is asked.
    """

    def __init__(
        self, *, findings: tuple[str, ...] = FINDINGS, ignores_severity_of: tuple[str, ...] = ()
    ) -> None:
        self.schema = ConditionSchema(findings)
        self.z_dim, self.w_dim, self.num_ws = 4, 5 + len(findings), 1
        self.device = torch.device("cpu")
        self.ignored = torch.tensor([name in ignores_severity_of for name in findings])
        self.values = torch.tensor([0.0, toy.LESION, toy.CYST][: len(findings)])

    def mapping(self, z, cond, truncation=1.0):  # [n, z_dim], [n, cond_dim] -> [n, 1, w_dim]
        u = torch.special.ndtr(z)  # uniform in (0, 1)
        half_axes = RESOLUTION * (0.3 + 0.15 * u[:, :2])
        offset = (2 * u[:, 2:4] - 1) * RESOLUTION / 16
        one_hot = cond[:, : len(self.values)]
        followed = ~self.ignored[one_hot.argmax(dim=1)]
        severity = cond[:, len(self.values)] * followed
        return torch.cat([half_axes, offset, severity[:, None], one_hot], dim=1)[:, None]

    def synthesis(self, w):  # [n, 1, w_dim] -> [n, 2, R, R] in [-1, 1]
        w = w[:, 0, :, None, None]
        yy, xx = torch.meshgrid(*[torch.arange(RESOLUTION) + 0.5] * 2, indexing="ij")
        centre = RESOLUTION / 2
        body = ((yy - centre) / w[:, 0]) ** 2 + ((xx - centre) / w[:, 1]) ** 2 < 1
        radius = torch.as_tensor(lesion_radius(w[:, 4].clamp(0, 1).numpy(), RESOLUTION))
        value = (w[:, 5:, 0, 0] * self.values).sum(dim=1)[:, None, None]
        lesion = (torch.hypot(yy - centre - w[:, 2], xx - centre - w[:, 3]) < radius) & (
            w[:, 5] < 0.5  # not normal
        )
        image = torch.where(lesion, value, torch.where(body, toy.BODY, 0.0))
        return torch.stack([image, lesion.float()], dim=1) * 2 - 1


class CopyingGenerator(DiscGenerator):
    """Returns training images verbatim: the memorising generator."""

    def __init__(self, train_images: np.ndarray) -> None:
        super().__init__()
        self.train_images = torch.as_tensor(train_images)

    def synthesis(self, w):
        index = (w[:, 0, :2].abs().sum(dim=1) * 1000).long() % len(self.train_images)
        image = self.train_images[index]
        return torch.stack([image, torch.zeros_like(image)], dim=1) * 2 - 1


class BrightCystGenerator(DiscGenerator):
    """Draws cysts as bright as lesions, where the cohort's are darker than the body."""

    def __init__(self) -> None:
        super().__init__(findings=TWO_FINDINGS)
        self.values = torch.tensor([0.0, toy.LESION, toy.LESION])


class OneSubjectGenerator(DiscGenerator):
    """Ignores z: every image of one condition is the same subject (a collapsed model)."""

    def mapping(self, z, cond, truncation=1.0):
        return super().mapping(torch.zeros_like(z), cond, truncation)


def loaded(generator) -> LoadedGenerator:
    direction = np.zeros(generator.w_dim, np.float32)
    direction[4] = 1.0  # one unit of severity moves w's severity entry by one
    directions = {finding: direction for finding in generator.schema.findings[1:]}
    return LoadedGenerator(generator, card={}, directions=directions, sha256="stub")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cohort():
    return disc_cohort(resolution=RESOLUTION, n_tracks=48, seed=1)


@pytest.fixture(scope="module")
def nets(cohort):
    feature_net = train_feature_net(cohort, epochs=6, seed=0, width=8)
    regressor = train_feature_net(cohort.train(), epochs=6, seed=1, width=12)
    return {"feature_net": feature_net, "regressor": regressor}


def targets_by_name(result):
    return {target["name"]: target["met"] for target in result["targets"]}


def test_a_faithful_generator_meets_the_progression_and_memorisation_targets(cohort, nets):
    result = evaluate(loaded(DiscGenerator()), cohort, **SIZES, **nets)
    assert json.loads(json.dumps(result)) == result
    for method in ("condition", "direction"):
        figures = result["controllability"][method]
        assert figures["spearman"] > 0.9
        assert figures["monotone_fraction"] >= 0.9
        assert figures["series"] == 8
        assert figures["timepoints"] == 5
        assert figures["mask_area"]["spearman"] > 0.9  # the drawn lesion grows with severity
        assert figures["mask_area"]["monotone_fraction"] >= 0.9
        # only the lesion changes, so outside it the series is identical
        assert result["identity_preservation"][method] == pytest.approx(1.0)
    assert result["identity_preservation"]["outside_lesion_masks"] is True
    assert result["identity_preservation"]["cohort_tracks"] < 1.0  # the cohort adds noise
    real = result["cohort_tracks_controllability"]  # the regressor reads the real tracks
    assert (real["series"], real["timepoints"]) == (6, 5)  # every eighth track held out
    assert real["spearman"] > 0.9
    assert real["mask_area"]["monotone_fraction"] == 1.0
    assert "by_finding" not in real  # one finding progresses: nothing to split
    assert result["memorisation"]["share_too_close"] <= 0.05
    assert result["fd"] >= 0
    for key in ("fd", "fd_train_vs_held_out"):  # means over sets drawn from equal pools
        draws = result[f"{key}_draws"]
        assert len(draws) == FD_DRAWS
        assert len(set(draws)) > 1
        assert result[key] == pytest.approx(np.mean(draws))
    train_images = int((~cohort.held_out).sum())
    assert result["draws"] == {
        "count": FD_DRAWS,
        "size": SIZES["n_generated"],
        "generated_pool": train_images,  # topped up to the training split's size
        "train_pool": train_images,
    }
    assert result["fd_train_vs_held_out"] > 0
    assert result["fd_ratio"] == pytest.approx(result["fd"] / result["fd_train_vs_held_out"])
    met = targets_by_name(result)
    assert met["Controllability Spearman (condition)"] is True
    assert met["Monotone series (direction)"] is True


def test_a_generator_that_ignores_severity_misses_controllability(cohort, nets):
    result = evaluate(
        loaded(DiscGenerator(ignores_severity_of=("lesion",))), cohort, **SIZES, **nets
    )
    condition = result["controllability"]["condition"]
    assert condition["monotone_fraction"] == 0.0
    assert condition["mask_area"]["monotone_fraction"] == 0.0  # every lesion the same size
    assert targets_by_name(result)["Monotone series (condition)"] is False
    assert result["controllability"]["direction"]["spearman"] > 0.9  # the direction still moves w


def test_figures_by_finding_show_the_one_finding_a_generator_does_not_follow(tmp_path):
    cohort = disc_cohort(resolution=RESOLUTION, n_tracks=64, seed=2, findings=TWO_FINDINGS)
    regressor = train_feature_net(cohort.train(), epochs=6, seed=1, width=12)
    half_faithful = loaded(DiscGenerator(findings=TWO_FINDINGS, ignores_severity_of=("cyst",)))
    result = evaluate(half_faithful, cohort, **SIZES, regressor=regressor)

    assert set(result["severity_regressor"]["held_out"]["by_finding"]) == {"lesion", "cyst"}
    condition = result["controllability"]["condition"]
    lesion, cyst = condition["by_finding"]["lesion"], condition["by_finding"]["cyst"]
    assert lesion["series"] == cyst["series"] == 4  # series take the findings in turn
    assert lesion["mask_area"]["monotone_fraction"] == 1.0
    assert cyst["mask_area"]["monotone_fraction"] == 0.0
    assert condition["mask_area"]["monotone_fraction"] == 0.5  # the pooled figure hides which
    direction = result["controllability"]["direction"]["by_finding"]  # moves w past the mapping
    assert direction["cyst"]["mask_area"]["monotone_fraction"] == 1.0
    real = result["cohort_tracks_controllability"]["by_finding"]
    assert real["cyst"]["mask_area"]["monotone_fraction"] == 1.0  # the cohort's cysts do grow
    report = write_report(result, tmp_path / "report.md").read_text()
    assert "| condition: cyst | 4 x 5 |" in report
    assert "| cohort's held-out tracks: lesion |" in report


def test_figures_do_not_depend_on_the_callers_thread_count(cohort):
    tiny = loaded(DiscGenerator())
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        result = evaluate(
            tiny,
            cohort,
            n_generated=24,
            n_series=2,
            timepoints=3,
            feature_epochs=1,
            regressor_epochs=1,
        )
        assert torch.get_num_threads() == threads  # and it is given back
        results.append({key: value for key, value in result.items() if key != "seconds"})
    assert results[0] == results[1]


def test_the_spread_across_z_tells_a_collapsed_generator_from_a_faithful_one(cohort, nets):
    faithful = evaluate(loaded(DiscGenerator()), cohort, **SIZES, **nets)["z_spread"]
    collapsed = evaluate(loaded(OneSubjectGenerator()), cohort, **SIZES, **nets)["z_spread"]
    assert faithful["held_out_subjects"] == collapsed["held_out_subjects"] > 0
    assert faithful["ratio"] > 0.5
    assert collapsed["generated"] == collapsed["ratio"] == 0.0


def test_the_distance_by_finding_shows_which_findings_images_are_off(tmp_path):
    cohort = disc_cohort(resolution=RESOLUTION, n_tracks=64, seed=2, findings=TWO_FINDINGS)
    feature_net = train_feature_net(cohort, epochs=6, seed=0, width=8)
    faithful, bright = (
        evaluate(loaded(generator), cohort, **SIZES, feature_net=feature_net)
        for generator in (DiscGenerator(findings=TWO_FINDINGS), BrightCystGenerator())
    )
    by_finding = bright["fd_by_finding"]
    assert set(by_finding) == {"lesion", "cyst"}  # the held-out part has no normal image
    assert by_finding["lesion"] == faithful["fd_by_finding"]["lesion"]  # drawn alike
    assert by_finding["cyst"]["ratio"] > 5 * faithful["fd_by_finding"]["cyst"]["ratio"]
    assert by_finding["cyst"]["images"] == (cohort.train().finding == 2).sum() == 100
    report = write_report(bright, tmp_path / "report.md").read_text()
    cyst = [by_finding["cyst"][key] for key in ("generated", "train", "ratio")]
    assert "| cyst | {:.4g} | {:.4g} | {:.4g} | 100, 20 |".format(*cyst) in report


def test_a_copying_generator_is_caught_memorising(cohort, nets):
    copier = CopyingGenerator(cohort.train().images)
    result = evaluate(loaded(copier), cohort, **SIZES, **nets)
    assert result["memorisation"]["share_too_close"] == 1.0
    assert result["memorisation"]["nearest_distance_min"] == pytest.approx(0.0, abs=1e-3)
    assert targets_by_name(result)["Memorised share"] is False


def test_a_missing_direction_is_reported_not_faked(cohort, nets):
    without = LoadedGenerator(DiscGenerator(), card={}, directions={}, sha256="stub")
    result = evaluate(without, cohort, **SIZES, **nets)
    assert "skipped" in result["controllability"]["direction"]
    assert "Monotone series (direction)" in targets_by_name(result)
    assert targets_by_name(result)["Monotone series (direction)"] is None


def test_a_real_network_evaluates_end_to_end_and_writes_a_report(cohort, tmp_path):
    torch.manual_seed(0)
    config = GeneratorConfig(
        resolution=RESOLUTION, findings=FINDINGS, z_dim=8, w_dim=8, img_channels=2,
        channel_base=64, channel_max=8, mapping_layers=1,
    )  # fmt: skip
    generator = build_generator(config).eval().requires_grad_(False)
    direction = {"lesion": np.ones(config.w_dim, np.float32)}
    untrained = LoadedGenerator(generator, card={}, directions=direction, sha256="tiny")
    result = evaluate(
        untrained,
        cohort,
        n_generated=24,
        n_series=3,
        timepoints=3,
        seed=2,
        feature_epochs=1,
        regressor_epochs=1,
    )
    assert result["feature_space"]["trained_on"] == "all cohort images, 1 epochs"
    assert result["severity_regressor"]["trained_on"] == "train split, 1 epochs"
    assert result["fd_ratio"] > 1  # random weights are far from the cohort
    report = write_report(result, tmp_path / "report.md", title="Tiny model").read_text()
    assert report.startswith("# Tiny model")
    assert "| Fréchet distance / train-vs-held-out Fréchet distance |" in report
    assert "**missed**" in report
    assert f"{result['fd']:.4g}" in report
    assert f"means over {FD_DRAWS} sets of" in report
    low, high = min(result["fd_draws"]), max(result["fd_draws"])
    assert f"{result['fd']:.4g} ({low:.4g} to {high:.4g})" in report  # the draws' spread
    assert "| mask area: Spearman | mask area: monotone |" in report
    spread = f"{result['z_spread']['generated']:.4g} per pixel"
    assert f"two images with the same conditions and different z differ by {spread}" in report


def test_figures_over_seeds_are_the_means_of_each_seeds_and_the_report_shows_every_seed(
    cohort, tmp_path
):
    generator = loaded(DiscGenerator(ignores_severity_of=("cyst",)))
    options = {**SIZES, "feature_epochs": 2, "regressor_epochs": 2}
    options.pop("seed")
    each = [evaluate(generator, cohort, seed=seed, **options) for seed in (3, 4)]
    combined = evaluate_over_seeds(generator, cohort, seeds=(3, 4), **options)

    assert combined["evaluated_on"]["seeds"] == [3, 4]
    assert [seed["fd"] for seed in combined["by_seed"]] == [one["fd"] for one in each]
    assert combined["fd"] == pytest.approx(np.mean([one["fd"] for one in each]))
    ratios = [one["fd_ratio"] for one in each]
    assert ratios[0] != ratios[1]
    assert combined["fd_ratio"] == pytest.approx(np.sqrt(ratios[0] * ratios[1]))  # geometric
    lesion = [one["fd_by_finding"]["lesion"] for one in each]
    assert combined["fd_by_finding"]["lesion"]["ratio"] == pytest.approx(
        np.sqrt(lesion[0]["ratio"] * lesion[1]["ratio"])
    )
    assert combined["fd_by_finding"]["lesion"]["train"] == pytest.approx(
        np.mean([one["train"] for one in lesion])
    )
    spearman = [one["controllability"]["condition"]["spearman"] for one in each]
    assert combined["controllability"]["condition"]["spearman"] == pytest.approx(np.mean(spearman))
    assert combined["fd_draws"] == each[0]["fd_draws"] + each[1]["fd_draws"]
    assert combined["controllability"]["condition"]["series"] == SIZES["n_series"]
    nearest = [one["memorisation"]["nearest_distance_min"] for one in each]
    assert nearest[0] != nearest[1]
    assert combined["memorisation"]["nearest_distance_min"] == min(nearest)
    met = {t["name"]: t["met"] for t in combined["targets"]}
    assert met["Controllability Spearman (condition)"] == (np.mean(spearman) >= 0.9)

    report = write_report(combined, tmp_path / "report.md").read_text()
    assert "evaluation seeds 3, 4 (figures are means over them)" in report
    assert "| measure | seed 3 | seed 4 | mean |" in report
    ratio_row = "| Fréchet distance / train-vs-held-out Fréchet distance | "
    assert ratio_row + f"{ratios[0]:.4g} | {ratios[1]:.4g} | {combined['fd_ratio']:.4g} |" in report
    assert f"means over {FD_DRAWS} sets per evaluation seed (2 seeds)" in report


def test_evaluating_over_no_seed_is_refused(cohort):
    with pytest.raises(ValueError, match="at least one seed"):
        evaluate_over_seeds(loaded(DiscGenerator()), cohort, seeds=())


def test_the_memorisation_reference_refuses_training_images_after_a_round_trip(cohort, tmp_path):
    reference = MemorisationReference.from_cohort(cohort, quantile=0.01)
    reference.save(tmp_path / "reference.npz")
    loaded_reference = MemorisationReference.load(tmp_path / "reference.npz")
    assert loaded_reference.threshold == reference.threshold
    train, held_out = cohort.train(), cohort.held_out_part()
    too_close, index, distance = loaded_reference.check(train.images[10])
    assert too_close
    assert index == 10
    assert distance < 0.01
    passed = [not loaded_reference.check(image)[0] for image in held_out.images]
    assert np.mean(passed) >= 0.9  # by construction about 99 % of new subjects pass
