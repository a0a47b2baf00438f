"""A generator's model card (the JSON genworker writes beside a checkpoint) in words, for the
page where an educator chooses a generator. Every part of a card is optional here: a model
trained or evaluated elsewhere may carry only what registering it needs."""

from __future__ import annotations

from typing import Any

# No torch: the web process imports these.
from genworker.latent.report import ROWS, over_generations
from genworker.report_text import fmt, sizes_line

# A latent model's figures in words (its evaluation names them by key).
FIGURE_NAMES = {
    **dict(ROWS),
    "cnr_ratio_min": "lesion contrast-to-noise, the lowest contrast's ratio (gen / sim)",
}


def card_facts(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) of what the model takes, how it was trained and on what, and whose
    anatomy that was; a part the card lacks is left out."""
    # A latent model's card keeps its anatomy's provenance with its cohort.
    provenance = card.get("provenance") or (card.get("cohort") or {}).get("provenance") or {}
    facts = [
        ("Conditions", _conditions(card.get("conditions") or {})),
        ("Channels", ", ".join(card.get("channels") or [])),
        ("Training", _training(card.get("training") or {})),
        ("Training stages", _stages(card.get("training") or {}, card.get("channels") or [])),
        ("Recipe", _recipe(card.get("recipe") or {})),
        ("Snapshot", _snapshot(card.get("selection") or {})),
        ("Training cohort", _cohort(card.get("cohort") or {})),
        ("Source anatomy", provenance.get("source", "")),
        ("Cite", provenance.get("citation", "")),
        ("Licence", _licence(provenance.get("licence", ""))),
        ("Weights", card.get("weights", "")),
    ]
    return [(label, text) for label, text in facts if text]


def _conditions(conditions: dict[str, Any]) -> str:
    if not conditions:
        return ""
    findings = ", ".join(conditions.get("findings", []))
    continuous = ", ".join(conditions.get("continuous", []))
    return f"finding ({findings}); {continuous}".rstrip("; ")


def _training(training: dict[str, Any]) -> str:
    if "cpu_minutes" in training:  # a latent model: stage by stage
        budget = training.get("budget_wall_minutes_on_two_cores")
        return (
            f"{training['wall_minutes']:.0f} min wall, {training['cpu_minutes']:.0f} CPU-min on "
            f"{training.get('device', '?')}"
            + (f" (budget {budget:g} min on two cores)" if budget else "")
        )
    if "images_seen" not in training:
        return ""
    text = f"{training['images_seen']:,} images seen"
    if training.get("devices"):
        text += " on " + ", ".join(training["devices"])
    if "seconds" in training:
        text += f" in {_duration(training['seconds'])}"
    if "seed" in training:
        text += f", training seed {training['seed']}"
    return text


def _stages(training: dict[str, Any], channels: list[str]) -> str:
    stages = training.get("stages") or {}
    text = "; ".join(
        f"{name.replace('_', ' ')} {stage['steps']:,} steps in {_duration(stage['wall_seconds'])}"
        for name, stage in stages.items()
    )
    for stage, name in RETRAINED.items():
        if training.get(f"{stage}_retrained"):
            text += f" (the {name} trained anew {training[f'{stage}_retrained']})"
    calibration = training.get("anatomy_calibration")
    if calibration:
        text += (
            "; the anatomy GAN's grids calibrated to the mean and covariance of its "
            f"{calibration['training_grids']:,} training grids"
        )
    gain = training.get("lesion_gain")
    if gain:
        order = {c: i for i, c in enumerate(channels)}  # as the model lists its contrasts
        by_channel = sorted(gain["gain"].items(), key=lambda item: order.get(item[0], len(order)))
        factors = ", ".join(f"{g:.2f} ({c})" for c, g in by_channel)
        text += (
            f"; each lesion's change in the image multiplied by {factors}, fitted so that "
            f"{gain['lesions']:,} held-out simulated lesions show the simulation's contrast "
            "against their surround"
        )
    reader = stages.get("anatomy_reader")
    if reader:
        text += (
            f"; lesions planned on the {' and '.join(reader['channels'])} as a network trained "
            f"on {reader['subjects']:,} simulated subjects reads them from the decoded image"
        )
    return text


# The stages a shipped model may have trained anew on its own other networks, in words.
RETRAINED = {"renderer": "lesion renderer", "anatomy": "anatomy GAN"}


def _licence(licence: str | dict[str, str]) -> str:
    if isinstance(licence, dict):
        return "; ".join(f"{source}: {text}" for source, text in licence.items())
    return licence


def _recipe(recipe: dict[str, Any]) -> str:
    if not recipe:
        return ""
    text = f"{recipe.get('name', '?')} ({recipe.get('device_class', '?')})"
    note = recipe.get("note")
    return text + (f". {note[:1].upper()}{note[1:]}." if note else "")


def _snapshot(selection: dict[str, Any]) -> str:
    if not selection.get("chosen"):
        return ""
    ranking = (selection.get("method") or {}).get("ranking")
    return selection["chosen"] + (f"; snapshots ranked by: {ranking}" if ranking else "")


def _cohort(cohort: dict[str, Any]) -> str:
    if not cohort:
        return ""
    text = f"{cohort.get('name', '?')} (seed {cohort.get('seed', '?')})"
    if "n_train_images" in cohort:
        text += f", {cohort['n_train_images']} training images"
    if "subjects" in cohort:
        text += f", {cohort['subjects']} simulated patients"
    if cohort.get("extra_normal_subjects"):
        text += f" and {cohort['extra_normal_subjects']} more without a finding"
    return text


def card_targets(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The measured quality against the targets the card states: name, value (four
    significant digits), target and whether it is met; none for a card never evaluated."""
    if "evaluation" in card:
        return _latent_targets(card["evaluation"])
    targets = (card.get("metrics") or {}).get("targets") or []
    return [
        {"name": t["name"], "value": fmt(t["value"]), "target": t["target"], "met": t["met"]}
        for t in targets
    ]


def _latent_targets(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """A latent model's targets, each value the mean ± sd over the evaluation's seeds."""
    figures = evaluation.get("figures") or {}
    rows = []
    for t in evaluation.get("targets") or []:
        value = fmt(t["value"])
        sd = (figures.get(t["figure"]) or {}).get("sd")
        if sd is not None:
            value += f" ± {fmt(sd)}"
        rows.append(
            {
                "name": figure_name(t["figure"]),
                "value": value,
                "target": t["target"],
                "met": t["met"],
            }
        )
    return rows


def figure_name(figure: str) -> str:
    """A figure's key in words; a finding's own figure (``nodule.dice``) names the finding."""
    finding, _, key = figure.rpartition(".")
    name = FIGURE_NAMES.get(key, key)
    return f"{finding}: {name}" if finding else name


def targets_met(card: dict[str, Any]) -> str:
    """``"2 of 6"`` quality targets met, or a dash for a card never evaluated."""
    targets = card_targets(card)
    return f"{sum(t['met'] for t in targets)} of {len(targets)}" if targets else "—"


def card_evaluation(card: dict[str, Any]) -> str:
    """What the targets were measured on, as the quality report says it; empty when the
    card does not say."""
    if "evaluation" in card:
        return _latent_evaluation(card["evaluation"])
    metrics = card.get("metrics") or {}
    return sizes_line(metrics) if metrics.get("evaluated_on") else ""


def _latent_evaluation(evaluation: dict[str, Any]) -> str:
    cases = evaluation.get("cases") or {}
    seeds = evaluation.get("seeds") or []
    seconds = sum((evaluation.get("seconds") or {}).values())
    series = cases.get("lesion_series")
    if isinstance(series, dict):  # per finding
        series = ", ".join(f"{count} {finding}" for finding, count in series.items())
    # Cards evaluated before a lesion could be read by its change call it the segmenter check.
    rejected = cases.get("plans_rejected", cases.get("plans_rejected_by_segmenter"))
    made = f"{cases.get('generated')} of {cases.get('asked')} cases generated"
    return (
        f"{made}{over_generations(cases)} "
        f"({series} lesion series of {cases.get('timepoints')} timepoints; "
        f"{cases.get('failed')} failed; {rejected} plans redrawn "
        f"after the image check), against patients simulated fresh (seed "
        f"{cases.get('held_out_seed')}); mean ± sd over {len(seeds)} evaluation seeds. "
        f"Measured in {_duration(seconds)} on {evaluation.get('hardware', '?')}: "
        f"{evaluation.get('command', '')}"
    )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"
