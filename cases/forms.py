"""Forms for authoring templates and launching generation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from cases.models import PROGRESSION_METHODS, GenerationJob, GeneratorModel, TemplateVersion
from gantry.permissions import users_with
from genworker.patients import VIGNETTE_PLACEHOLDERS


def parse_probabilities(text: str) -> dict[str, float]:
    """``"hypertension: 0.3, diabetes: 0.1"`` -> ``{"hypertension": 0.3, "diabetes": 0.1}``."""
    result: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.replace("\n", ",").split(","))):
        name, sep, value = part.partition(":")
        if not sep or not name.strip():
            raise ValidationError(f"write each comorbidity as 'name: probability', not {part!r}")
        try:
            probability = float(value)
        except ValueError:
            raise ValidationError(f"{value.strip()!r} is not a number ({name.strip()})") from None
        if not 0.0 <= probability <= 1.0:
            raise ValidationError(f"the probability of {name.strip()} must lie in [0, 1]")
        result[name.strip()] = probability
    return result


class TemplateForm(forms.Form):
    """One version of a case template, flattened into fields an educator can fill in."""

    title = forms.CharField(max_length=200)
    generator = forms.ModelChoiceField(queryset=GeneratorModel.objects.filter(is_active=True))
    finding = forms.ChoiceField(help_text="What the cases show: the findings each generator makes.")
    body_region = forms.CharField(max_length=64)
    truncation = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.8)
    timepoints = forms.IntegerField(min_value=1, max_value=20, initial=5)
    severity_from = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.1)
    severity_to = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.9)
    interval_days = forms.IntegerField(min_value=1, max_value=3650, initial=90)
    method = forms.ChoiceField(choices=PROGRESSION_METHODS)
    age_min = forms.IntegerField(min_value=0, max_value=110, initial=40)
    age_max = forms.IntegerField(min_value=0, max_value=110, initial=75)
    sex_mix = forms.FloatField(
        min_value=0.0, max_value=1.0, initial=0.5, label="Share of male patients"
    )
    comorbidities = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="e.g. hypertension: 0.3, diabetes: 0.1",
    )
    history = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The clinical vignette. Placeholders filled per patient: "
        + "; ".join(f"{{{name}}}: {meaning}" for name, meaning in VIGNETTE_PLACEHOLDERS.items())
        + ".",
    )
    findings_text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    diagnosis = forms.CharField(max_length=200)
    discussion = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    teaching_points = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    question_stems = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One question stem per line.",
    )
    co_authors = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        help_text="Educators who may edit this template besides its owner.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["co_authors"].queryset = users_with("cases.change_casetemplate")
        self.fields["finding"].choices = [("", "---------")] + [
            (generator.title, [(f, f) for f in generator.findings])
            for generator in self.fields["generator"].queryset
        ]

    def clean_comorbidities(self) -> dict[str, float]:
        return parse_probabilities(self.cleaned_data["comorbidities"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "age_min" in data and "age_max" in data and data["age_min"] > data["age_max"]:
            raise ValidationError("the youngest age must not exceed the oldest")
        generator, finding = data.get("generator"), data.get("finding")
        if generator is not None and finding and finding not in generator.findings:
            self.add_error(
                "finding",
                f"{generator.title} does not make {finding}; it makes "
                f"{' or '.join(generator.findings)}",
            )
        return data

    def version_content(self) -> dict[str, Any]:
        """The cleaned data as TemplateVersion fields."""
        d = self.cleaned_data
        generator: GeneratorModel = d["generator"]
        return {
            "title": d["title"],
            "modality": generator.modality,
            "body_region": d["body_region"],
            "finding": d["finding"],
            "generator": generator,
            "truncation": d["truncation"],
            "progression": {
                key: d[key]
                for key in ("timepoints", "severity_from", "severity_to", "interval_days", "method")
            },
            "patient_recipe": {
                "age_min": d["age_min"],
                "age_max": d["age_max"],
                "sex_mix": d["sex_mix"],
                "comorbidities": d["comorbidities"],
            },
            "history": d["history"],
            "findings_text": d["findings_text"],
            "diagnosis": d["diagnosis"],
            "discussion": d["discussion"],
            "teaching_points": d["teaching_points"],
            "question_stems": [s.strip() for s in d["question_stems"].splitlines() if s.strip()],
        }

    @staticmethod
    def initial_from(version: TemplateVersion) -> dict[str, Any]:
        recipe = version.patient_recipe
        return {
            "co_authors": list(version.template.co_authors.values_list("pk", flat=True)),
            "title": version.title,
            "generator": version.generator_id,
            "finding": version.finding,
            "body_region": version.body_region,
            "truncation": version.truncation,
            **version.progression,
            "age_min": recipe.get("age_min"),
            "age_max": recipe.get("age_max"),
            "sex_mix": recipe.get("sex_mix"),
            "comorbidities": ", ".join(
                f"{k}: {v}" for k, v in recipe.get("comorbidities", {}).items()
            ),
            "history": version.history,
            "findings_text": version.findings_text,
            "diagnosis": version.diagnosis,
            "discussion": version.discussion,
            "teaching_points": version.teaching_points,
            "question_stems": "\n".join(version.question_stems),
        }


class GenerateForm(forms.Form):
    n_cases = forms.IntegerField(
        min_value=1, max_value=GenerationJob.MAX_CASES, initial=2, label="Number of cases"
    )
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=2**31 - 1,
        help_text="Leave empty for a random seed; the same seed reproduces the same cases.",
    )
    with_twins = forms.BooleanField(
        required=False,
        label="With normal twins",
        help_text="Also make each case's normal twin: the same patient without the finding, "
        "for 'which is abnormal?' and 'is this normal?' questions.",
    )
