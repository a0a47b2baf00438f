"""``python -m genworker``: train and ship a recipe; figures of a shipped checkpoint."""

import json
import math

import pytest

from genworker.checkpoint import card_path, load_generator, sha256_file
from genworker.cli import main
from genworker.recipes import RECIPES, Recipe
from tests.tiny_generator import write_tiny_checkpoint

TINY_NETWORK = {
    "architecture": "stylegan2",
    "z_dim": 8,
    "w_dim": 8,
    "img_channels": 2,
    "channel_base": 64,
    "channel_max": 16,
    "mapping_layers": 1,
}
TINY_RECIPE = Recipe(
    "tiny-brain",
    "brain-glioma",
    32,
    12,
    TINY_NETWORK,
    kimg=0.064,
    batch_size=8,
    cohort_seed=3,
    snapshot_kimg=0.032,
)

ONE_SEED = ["--seeds", "1"]
COHORT = [
    "--cohort",
    "brain-glioma",
    "--resolution",
    "32",
    "--subjects",
    "12",
    "--cohort-seed",
    "3",
]


def test_evaluate_writes_a_report_and_with_update_card_stores_the_figures(tmp_path, capsys):
    checkpoint = write_tiny_checkpoint(tmp_path)
    before = sha256_file(checkpoint)
    assert main(["evaluate", str(checkpoint), *COHORT, *ONE_SEED]) == 0
    assert checkpoint.with_suffix(".report.md").read_text().startswith("# tiny-brain quality")
    assert sha256_file(checkpoint) == before  # without --update-card the checkpoint stays

    assert main(["evaluate", str(checkpoint), *COHORT, *ONE_SEED, "--update-card"]) == 0
    metrics = load_generator(checkpoint).card["metrics"]
    assert metrics["evaluated_on"]["cohort"] == "brain-glioma"
    assert metrics["controllability"]["condition"]["mask_area"].keys() == {
        "spearman",
        "monotone_fraction",
    }
    sidecar = json.loads(card_path(checkpoint).read_text())
    assert sidecar["metrics"] == metrics
    assert sidecar["sha256"] == sha256_file(checkpoint) != before

    reseed = ["--seed", "1", "--update-card"]
    assert main(["evaluate", str(checkpoint), *COHORT, *ONE_SEED, *reseed]) == 0
    reseeded = load_generator(checkpoint).card["metrics"]
    assert reseeded["evaluated_on"]["seeds"] == [1]
    assert reseeded["evaluated_on"]["truncation"] == 1.0
    assert reseeded["fd"] != metrics["fd"]  # other networks, draws and images


def test_evaluate_over_seeds_in_parallel_reports_the_same_means_as_one_after_another(tmp_path):
    figures = {}
    for workers in ("1", "2"):
        folder = tmp_path / workers
        folder.mkdir()
        checkpoint = write_tiny_checkpoint(folder)  # each its own: --update-card rewrites it
        report = folder / "report.md"
        seeds = ["--seeds", "2", "--workers", workers, "--truncation", "0.8"]
        written = ["--report", str(report), "--update-card"]
        assert main(["evaluate", str(checkpoint), *COHORT, *seeds, *written]) == 0
        figures[workers] = load_generator(checkpoint).card["metrics"]
        figures[workers].pop("seconds")
        assert "## Across evaluation seeds" in report.read_text()
    assert figures["1"] == figures["2"]
    metrics = figures["2"]
    assert metrics["evaluated_on"]["seeds"] == [0, 1]
    assert metrics["evaluated_on"]["truncation"] == 0.8
    per_seed = [seed["fd"] for seed in metrics["by_seed"]]
    assert per_seed[0] != per_seed[1]
    assert metrics["fd"] == pytest.approx(sum(per_seed) / 2)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--seeds", "0"], "--seeds: must be at least 1, not 0"),
        (["--truncation", "1.5"], "--truncation: must lie in [0, 1], not 1.5"),
    ],
)
def test_evaluate_refuses_options_out_of_range(tmp_path, capsys, option, message):
    checkpoint = write_tiny_checkpoint(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(checkpoint), *COHORT, *option])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_evaluate_names_a_missing_checkpoint(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing.pt"), *COHORT]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_a_recipe_trains_resumes_and_ships_with_or_without_evaluation(
    tmp_path, monkeypatch, capsys, one_torch_thread
):
    monkeypatch.setitem(RECIPES, "tiny-brain", {"gpu": TINY_RECIPE})
    runs, models = ["--runs", str(tmp_path / "runs")], ["--models", str(tmp_path / "models")]
    train = ["train", "tiny-brain", "--device-class", "gpu", "--device", "cpu", *runs]
    assert main([*train, "--max-minutes", "0"]) == 0
    assert "step 0, 0.0 kimg, stopped by the time limit" in capsys.readouterr().out
    assert main(train) == 0
    assert "step 8, 0.1 kimg, finished" in capsys.readouterr().out
    assert len(list((tmp_path / "runs" / "cohorts").glob("*/manifest.json"))) == 1

    ship = ["ship", "tiny-brain", "--device-class", "gpu", "--device", "cpu", *runs, *models]
    assert main([*ship, "--no-evaluate"]) == 0
    checkpoint = tmp_path / "models" / "tiny-brain.pt"
    card = load_generator(checkpoint).card
    assert card["recipe"]["device_class"] == "gpu"
    assert card["metrics"] == {}  # evaluated later
    assert checkpoint.with_suffix(".glioma.png").is_file()
    assert not checkpoint.with_suffix(".report.md").exists()

    assert main(ship) == 0
    assert load_generator(checkpoint).card["metrics"]["evaluated_on"]["cohort"] == "brain-glioma"
    assert checkpoint.with_suffix(".report.md").read_text().startswith("# tiny-brain quality")

    assert main([*ship, "--snapshot", "selected"]) == 2
    assert "run `select` first" in capsys.readouterr().err
    select = ["select", "tiny-brain", "--device-class", "gpu", "--device", "cpu", *runs]
    assert main([*select[:-1], str(tmp_path / "elsewhere")]) == 2
    assert "has no snapshots" in capsys.readouterr().err
    selection_path = tmp_path / "runs" / "tiny-brain-gpu" / "selection.json"
    one_seed = {}
    for seed in (0, 1):
        assert main([*select, "--seed", str(seed), "--seeds", "1"]) == 0
        one_seed[seed] = json.loads(selection_path.read_text())["ranking"]
    assert main([*select, "--seeds", "2", "--workers", "1"]) == 0
    selection = json.loads(selection_path.read_text())
    assert selection["seeds"] == [0, 1]
    assert selection["snapshots"] == ["step-0000004.pt", "step-0000008.pt"]
    _assert_ranked_on_the_seeds_means(selection["ranking"], one_seed[0], one_seed[1])
    ranking = selection["ranking"]
    order = [(-r["targets_met"], r["shortfall"]) for r in ranking]
    assert order == sorted(order)
    assert selection["chosen"] == ranking[0]["snapshot"]
    assert f"chosen: {selection['chosen']}" in capsys.readouterr().out

    assert main([*ship, "--snapshot", "selected", "--no-evaluate"]) == 0
    card = load_generator(checkpoint).card
    assert card["selection"] == selection
    assert card["training"]["steps"] == int(selection["chosen"][5:12])

    stale = tmp_path / "runs" / "tiny-brain-gpu" / "snapshots" / "step-0000012.pt"
    stale.write_bytes(b"")  # a snapshot the selection has not ranked
    assert main([*ship, "--snapshot", "selected"]) == 2
    assert "predates the run's snapshots: select again" in capsys.readouterr().err
    assert load_generator(checkpoint).card["selection"] == selection  # the shipped model stays


def _assert_ranked_on_the_seeds_means(ranking: list, *per_seed: list) -> None:
    """Each snapshot's targets: the seeds' arithmetic means, the FD ratio their geometric."""
    for row in ranking:
        seeds = [next(r for r in one if r["snapshot"] == row["snapshot"]) for one in per_seed]
        for name, value in row["targets"].items():
            values = [r["targets"][name] for r in seeds]
            if name.startswith("Fréchet"):
                assert value == pytest.approx(math.sqrt(values[0] * values[1]))
            else:
                assert value == pytest.approx(sum(values) / 2)
