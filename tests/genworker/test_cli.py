"""``python -m genworker evaluate``: figures of a shipped checkpoint, into its card on request."""

import json

from genworker.checkpoint import card_path, load_generator, sha256_file
from genworker.cli import main
from tests.tiny_generator import write_tiny_checkpoint

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
    assert main(["evaluate", str(checkpoint), *COHORT]) == 0
    assert checkpoint.with_suffix(".report.md").read_text().startswith("# tiny-brain quality")
    assert sha256_file(checkpoint) == before  # without --update-card the checkpoint stays

    assert main(["evaluate", str(checkpoint), *COHORT, "--update-card"]) == 0
    metrics = load_generator(checkpoint).card["metrics"]
    assert metrics["evaluated_on"]["cohort"] == "brain-glioma"
    assert metrics["controllability"]["condition"]["mask_area"].keys() == {
        "spearman",
        "monotone_fraction",
    }
    sidecar = json.loads(card_path(checkpoint).read_text())
    assert sidecar["metrics"] == metrics
    assert sidecar["sha256"] == sha256_file(checkpoint) != before


def test_evaluate_names_a_missing_checkpoint(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing.pt"), *COHORT]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
