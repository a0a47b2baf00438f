"""Pieces of a quality report's text made from the result dict alone, without torch: the
report writer (:mod:`genworker.evaluation`) uses them, and so does the site's generator
page, from the model card the result is stored in."""

from __future__ import annotations


def fmt(value: object) -> str:
    """A figure as the reports print it: four significant digits, a dash for none."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def sizes_line(result: dict) -> str:
    """What an evaluation was measured on (cohort, split sizes, seeds, truncation)."""
    on = result.get("evaluated_on", {})
    seeds = on.get("seeds")
    evaluation = (
        f"evaluation seeds {', '.join(map(str, seeds))} (figures are means over them)"
        if seeds
        else f"evaluation seed {on.get('seed')}"
    )
    return (
        f"Cohort {on.get('cohort')} (seed {on.get('cohort_seed')}): "
        f"{on.get('train_images')} train and {on.get('held_out_images')} held-out images; "
        f"{on.get('generated_images')} generated images per evaluation, {evaluation}, "
        f"truncation {on.get('truncation')}."
    )
