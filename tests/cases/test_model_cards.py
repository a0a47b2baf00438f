"""A latent model's card in words: each finding's figures name the finding."""

from __future__ import annotations

from cases.model_cards import card_evaluation, card_targets


def _card() -> dict:
    return {
        "evaluation": {
            "figures": {"nodule.dice": {"mean": 0.91, "sd": 0.01}, "c2st_auc": {"mean": 0.7}},
            "targets": [
                {"figure": "nodule.dice", "target": ">= 0.85", "value": 0.91, "met": True},
                {"figure": "c2st_auc", "target": "<= 0.8", "value": 0.7, "met": True},
            ],
            "cases": {
                "generated": 5,
                "asked": 5,
                "lesion_series": {"nodule": 2, "effusion": 2},
                "timepoints": 4,
                "failed": 0,
                "plans_rejected": 3,
            },
            "seeds": [0, 1],
            "seconds": {"generation": 60.0},
        }
    }


def test_a_findings_target_names_the_finding_and_the_set_targets_do_not():
    names = [row["name"] for row in card_targets(_card())]
    assert names[0].startswith("nodule: mask-image Dice")
    assert names[1].startswith("classifier two-sample AUC")
    assert card_targets(_card())[0]["value"] == "0.91 ± 0.01"


def test_the_evaluation_counts_each_findings_series_and_the_redrawn_plans():
    text = card_evaluation(_card())
    assert "2 nodule, 2 effusion lesion series of 4 timepoints" in text
    assert "3 plans redrawn after the image check" in text
    assert "5 of 5 cases generated (" in text


def test_an_evaluation_that_generated_each_seeds_cases_says_over_how_many_generations():
    card = _card()
    card["evaluation"]["cases"].update(generations=2, asked=10, generated=9)
    assert "9 of 10 cases generated over 2 generations (" in card_evaluation(card)
