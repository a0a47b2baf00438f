"""A closed study's figures, recorded on its generator's model card.

The card (``GeneratorModel.model_card``) is the generator's record: what it was trained on,
how it measures, and how well experts told its images from real ones. Closing a study that
is not training writes one entry under ``CARD_KEY``, keyed by the study: closing again
replaces it. The figures are the dataclasses of ``turing.statistics`` as plain dicts, so
the generator's page formats them as the results page does.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db import transaction

from cases.models import GeneratorModel
from turing.models import TuringStudy
from turing.results import study_results
from turing.statistics import binomial_p_value

CARD_KEY = "turing_studies"


def card_entry(study: TuringStudy) -> dict[str, Any]:
    """The study's figures for the card: proportion correct with its Wilson interval and
    test against chance, raters and responses counted, and what the study was."""
    results = study_results(study)
    entry: dict[str, Any] = {
        "study": study.pk,
        "title": study.title,
        "closed": study.closed_at.date().isoformat(),
        "format": study.format,
    }
    if results.forced_choice is not None:
        figures = results.forced_choice
        entry |= {
            "raters": len(results.per_rater),
            "responses": figures.correct.n,
            "correct": asdict(figures.correct),
            "chance": figures.chance,
            "p_value": figures.p_value,
            "test": "exact binomial, one-sided, against chance",
        }
    else:
        analysis = results.analysis
        accuracy = analysis.pooled.accuracy
        entry |= {
            "raters": len(analysis.per_rater),
            "responses": analysis.pooled.n_readings,
            "correct": asdict(accuracy),
            "chance": 0.5,
            "p_value": binomial_p_value(accuracy.k, accuracy.n) if accuracy.n else None,
            "test": "exact binomial, two-sided, against chance",
            "auc": asdict(analysis.pooled.auc) if analysis.pooled.auc else None,
            "reader_case_accuracy": (
                asdict(analysis.reader_case.accuracy) if analysis.reader_case else None
            ),
            "fleiss_kappa": analysis.fleiss_kappa,
        }
    if results.quality is not None:
        entry["quality"] = asdict(results.quality)
    return entry


def record_on_card(study: TuringStudy) -> None:
    """Write the study's entry on its generator's card (replacing an earlier one)."""
    entry = card_entry(study)
    with transaction.atomic():
        generators = GeneratorModel.objects.select_for_update()
        generator = generators.get(pk=study.synthetic_generator().pk)
        card = dict(generator.model_card)
        others = [e for e in card.get(CARD_KEY, []) if e["study"] != study.pk]
        card[CARD_KEY] = [*others, entry]
        generator.model_card = card
        generator.save(update_fields=["model_card"])


def card_studies(generator: GeneratorModel) -> list[dict[str, Any]]:
    """The card's study entries, newest first."""
    entries = generator.model_card.get(CARD_KEY, [])
    return sorted(entries, key=lambda e: (e["closed"], e["study"]), reverse=True)
