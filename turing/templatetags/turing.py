"""Formatting of study figures, and the small Turing panels other apps' pages include."""

from __future__ import annotations

from typing import Any

from django import template

from cases.models import GeneratorModel, SyntheticPatient
from turing.card import card_studies
from turing.models import CaseFlag, TuringStudy
from turing.statistics import Auc, CrossedMean, Proportion, Spread

register = template.Library()
MISSING = "—"


@register.filter
def proportion(value: Proportion) -> str:
    """``0.63 (0.52-0.72) 19/30``, or a dash when undefined."""
    if value.estimate is None:
        return MISSING
    return f"{value.estimate:.2f} ({value.low:.2f}-{value.high:.2f}) {value.k}/{value.n}"


@register.filter
def auc(value: Auc | None) -> str:
    if value is None:
        return MISSING
    if value.low is None:
        return f"{value.auc:.2f}"
    return f"{value.auc:.2f} ({value.low:.2f}-{value.high:.2f})"


@register.filter
def crossed(value: CrossedMean | None) -> str:
    """``0.63 (0.51-0.75)``: a multi-reader multi-case estimate and its interval; a dash
    when undefined (also for a missing analysis: the template passes "" then)."""
    if not value:
        return MISSING
    return f"{value.estimate:.2f} ({value.low:.2f}-{value.high:.2f})"


@register.filter
def pvalue(value: float | None) -> str:
    if value is None:
        return MISSING
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


@register.filter
def mean_sd(value: Spread) -> str:
    """``3.40 ± 0.89``; the mean alone from one score, a dash from none."""
    if value.mean is None:
        return MISSING
    return f"{value.mean:.2f}" if value.sd is None else f"{value.mean:.2f} ± {value.sd:.2f}"


@register.filter
def seconds(milliseconds: float | None) -> str:
    return MISSING if milliseconds is None else f"{milliseconds / 1000:.1f} s"


@register.filter
def number(value: float | None, digits: int = 2) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


@register.inclusion_tag("turing/_case_flags.html", takes_context=True)
def case_flags(context: dict[str, Any], case: SyntheticPatient) -> dict[str, Any]:
    """Flags of ``case`` from closed studies, for its educators only."""
    user = context["request"].user
    if not user.has_perm("turing.run_study"):
        return {"flags": []}
    flags = CaseFlag.objects.filter(case=case).select_related("study")
    return {"flags": flags}


@register.inclusion_tag("turing/_generator_results.html", takes_context=True)
def generator_results(context: dict[str, Any], generator: GeneratorModel) -> dict[str, Any]:
    """The Turing studies recorded on ``generator``'s card, with their figures rebuilt as
    the results page formats them."""
    formats = dict(TuringStudy.Format.choices)
    rows = [
        {
            **entry,
            "format": formats.get(entry["format"], entry["format"]).split(":")[0],
            "correct": Proportion(**entry["correct"]),
            "auc": Auc(**entry["auc"]) if entry.get("auc") else None,
            "reader_case_accuracy": (
                CrossedMean(**entry["reader_case_accuracy"])
                if entry.get("reader_case_accuracy")
                else None
            ),
            "fleiss_kappa": entry.get("fleiss_kappa"),  # single images only
        }
        for entry in card_studies(generator)
    ]
    return {"rows": rows, "user": context["request"].user}
