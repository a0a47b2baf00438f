"""The evaluation report beside a latent model: ``<name>.report.md``."""

from __future__ import annotations

from pathlib import Path

# figure -> what it says; figures with a "_simulation" twin are shown beside it. A lesion
# is "read" from the image as the model checks its cases: by the segmenter, or from the
# change it makes (see genworker.latent.model).
SET_ROWS = (
    ("c2st_auc", "classifier two-sample AUC, generated vs held-out simulation (0.5: alike)"),
    ("fd", "Fréchet distance, generated vs held-out simulation (fixed feature space)"),
    ("fd_reference", "Fréchet distance, training reference vs held-out simulation"),
    ("fd_ratio", "Fréchet distance ratio (generated / reference)"),
    ("nearest_training_ratio", "median distance to the nearest training patient / held-out's"),
    ("nearer_than_held_out_share", "patients nearer to training than 99% of held-out ones"),
)
FINDING_ROWS = (
    ("dice", "mask-image Dice (lesion read from the image vs stored mask)"),
    ("mask_clean_share", "masks one component, inside the body, off the border"),
    ("left_share", "lesions read on the patient's left"),
    ("side_share_gap", "|left share - the simulation's|"),
    ("side_agreement", "side read = stored side"),
    ("side_chi2_p", "χ² p, side read vs the simulation's"),
    ("location_chi2_p", "χ² p, location read vs the simulation's"),
    ("spearman", "Spearman, lesion area read vs severity"),
    ("monotone_share", "series whose lesion area read grows monotonically"),
    ("identity_ssim", "SSIM between noise-free timepoints outside the dilated lesion"),
    ("identity_ssim_acquired", "the same between the acquired (noisy) timepoints"),
)
ROWS = SET_ROWS + FINDING_ROWS


def _fmt(figure: dict | None) -> str:
    if not figure or figure.get("mean") is None:
        return "-"
    sd = figure.get("sd")
    return f"{figure['mean']:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")


def _finding_rows(finding: str, channels: list[str]) -> list[tuple[str, str]]:
    rows = list(FINDING_ROWS)
    for channel in channels:
        rows.append((f"cnr_{channel}", f"lesion contrast-to-noise, {channel}"))
        rows.append((f"cnr_ratio_{channel}", f"contrast-to-noise ratio, {channel} (gen / sim)"))
    return [(f"{finding}.{key}", text) for key, text in rows]


def _table(figures: dict, rows: list[tuple[str, str]]) -> list[str]:
    lines = ["| figure | generated | simulation |", "| --- | --- | --- |"]
    for key, text in rows:
        if key in figures:
            twin = figures.get(f"{key}_simulation")
            lines.append(f"| {text} | {_fmt(figures[key])} | {_fmt(twin) if twin else ''} |")
    return lines


def _frechet_by_finding(figures: dict) -> list[str]:
    findings = [key.removesuffix(".fd_ratio") for key in figures if key.endswith(".fd_ratio")]
    if not findings:
        return []
    lines = [
        "",
        "## Fréchet distance by finding",
        "",
        "| finding | generated vs held-out | training reference vs held-out | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for finding in findings:
        row = [figures.get(f"{finding}.{key}") for key in ("fd", "fd_reference", "fd_ratio")]
        lines.append(f"| {finding} | " + " | ".join(_fmt(figure) for figure in row) + " |")
    return lines


def over_generations(cases: dict) -> str:
    """The words for an evaluation that generated its cases more than once."""
    generations = cases.get("generations", 1)
    return f" over {generations} generations" if generations > 1 else ""


def _yield_table(by_start: dict) -> list[str]:
    if not by_start:
        return []
    lines = [
        "",
        "## Cases made by the severity they start at",
        "",
        "| finding | first severity | made / asked |",
        "| --- | --- | --- |",
    ]
    for finding, bins in by_start.items():
        for span, counts in bins.items():
            lines.append(f"| {finding} | {span} | {counts['made']} / {counts['asked']} |")
    return lines


def write_report(
    result: dict, path: Path, *, title: str, command: str, hardware: str, channels: list[str]
) -> Path:
    figures = result["figures"]
    cases = result["cases"]
    series = ", ".join(f"{n} {finding}" for finding, n in cases["lesion_series"].items())
    lines = [
        f"# {title}: evaluation",
        "",
        f"`{command}`",
        "",
        f"Hardware: {hardware}. Wall time: {sum(result['seconds'].values()) / 60:.1f} min "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in result['seconds'].items())}).",
        "",
        f"{cases['generated']} of {cases['asked']} cases generated{over_generations(cases)} "
        f"({cases['failed']} failed; {cases['plans_rejected']} plans rejected by the image "
        f"check), {series} lesion series of {cases['timepoints']} timepoints; held-out "
        f"simulation from seed {cases['held_out_seed']}; training reference: "
        f"{cases['training_reference']}. Figures are mean ± sd over evaluation seeds "
        f"{result['seeds']} (each its own generation of the cases, bootstrap resamples of "
        "each finding's cases for its figures, the Fréchet distance and the nearest training "
        "patients on the whole sets, and a two-sample classifier).",
        "",
        "## Targets",
        "",
        "| figure | target | measured | met |",
        "| --- | --- | --- | --- |",
    ]
    for row in result["targets"]:
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        measured = _fmt(figures.get(row["figure"]))
        lines.append(f"| {row['figure']} | {row['target']} | {measured} | {met} |")
    lines += _yield_table(cases.get("made_by_start", {}))
    lines += ["", "## Every image", "", *_table(figures, list(SET_ROWS))]
    lines += _frechet_by_finding(figures)
    for finding in result["findings"]:
        lines += [
            "",
            f"## {finding.capitalize()}",
            "",
            *_table(figures, _finding_rows(finding, channels)),
        ]
    path.write_text("\n".join(lines) + "\n")
    return path
