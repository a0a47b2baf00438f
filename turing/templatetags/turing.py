"""Formatting of study figures, and the small Turing panels other apps' pages include."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Q

from cases.models import GeneratorModel, SyntheticPatient
from turing.models import CaseFlag, TuringStudy
from turing.results import study_analysis
from turing.statistics import Auc, CrossedMean, Proportion

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
    """Pooled results of the closed studies whose synthetic side came from ``generator``."""
    studies = (
        TuringStudy.objects.filter(status=TuringStudy.Status.CLOSED)
        .filter(Q(generator=generator) | Q(cases__template_version__generator=generator))
        .distinct()
    )
    return {
        "rows": [(study, study_analysis(study)) for study in studies],
        "user": context["request"].user,
    }
