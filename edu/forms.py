"""Forms of the edu pages, and the conversion of a posted item page into responses."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from cases.models import CaseTemplate
from edu.models import CurationRule, DifficultyDial, Question, Quiz, Review
from gantry import scales
from gantry.permissions import users_with


class ReviewForm(forms.ModelForm):
    class Meta:
        model = Review
        fields = ("realism", "shows_finding", "teaching_value", "comment")
        widgets = {
            "realism": forms.RadioSelect(choices=scales.REALISM),
            "shows_finding": forms.RadioSelect,
            "teaching_value": forms.RadioSelect(choices=scales.TEACHING_VALUE),
            "comment": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {"shows_finding": "Shows the labelled finding"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A required choice: without this, its radios start with a blank "---------" one.
        self.fields["shows_finding"].choices = Review.Finding.choices


class CurationRuleForm(forms.ModelForm):
    min_reviews = forms.IntegerField(min_value=1, max_value=50, label="Reviews needed")
    min_mean_realism = forms.FloatField(
        min_value=1,
        max_value=5,
        label="Min mean realism (1 to 5)",
        widget=forms.NumberInput(attrs={"step": "0.1"}),
    )

    class Meta:
        model = CurationRule
        fields = ("min_reviews", "min_mean_realism", "finding_confirmed_by_all")
        labels = {"finding_confirmed_by_all": "Every expert confirms the finding"}


class DifficultyDialForm(forms.ModelForm):
    class Meta:
        model = DifficultyDial
        fields = ("levels", "hardest_severity_scale", "easiest_truncation", "hardest_truncation")
        labels = {
            "levels": "Practice levels",
            "hardest_severity_scale": "Hardest level's severity (fraction of the template's)",
            "easiest_truncation": "Easiest level's truncation",
            "hardest_truncation": "Hardest level's truncation",
        }
        widgets = {
            name: forms.NumberInput(attrs={"step": "0.05"})
            for name in ("hardest_severity_scale", "easiest_truncation", "hardest_truncation")
        }


class QuizForm(forms.ModelForm):
    cohort = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["co_authors"].queryset = users_with("edu.manage_quiz")
        self.fields["normal_twin_rate"].required = False  # left out: the quiz keeps its rate

    def clean_normal_twin_rate(self) -> float:
        rate = self.cleaned_data.get("normal_twin_rate")
        return self.instance.normal_twin_rate if rate is None else rate

    class Meta:
        model = Quiz
        fields = (
            "title",
            "description",
            "mode",
            "time_limit_minutes",
            "allow_back",
            "shuffle",
            "unknown_case",
            "normal_twin_rate",
            "cohort",
            "opens_at",
            "closes_at",
            "invite_reference_readers",
            "co_authors",
        )
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "opens_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "closes_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }


class CaseFilterForm(forms.Form):
    """Which approved cases the add-item list shows."""

    finding = forms.CharField(required=False)
    modality = forms.CharField(required=False)
    template = forms.ModelChoiceField(queryset=CaseTemplate.objects.all(), required=False)
    severity_min = forms.FloatField(required=False, min_value=0, max_value=1)
    severity_max = forms.FloatField(required=False, min_value=0, max_value=1)

    def apply(self, cases: Any) -> Any:
        data = self.cleaned_data
        if data.get("finding"):
            cases = cases.filter(template_version__finding__iexact=data["finding"])
        if data.get("modality"):
            cases = cases.filter(template_version__modality__iexact=data["modality"])
        if data.get("template"):
            cases = cases.filter(template_version__template=data["template"])
        if data.get("severity_min") is not None:
            cases = cases.filter(studies__severity__gte=data["severity_min"])
        if data.get("severity_max") is not None:
            cases = cases.filter(studies__severity__lte=data["severity_max"])
        return cases.distinct()


class QuestionForm(forms.ModelForm):
    options_text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Options",
        help_text="Single best answer: one option a line, 'text | feedback'; "
        "start the correct one with '*'.",
    )

    class Meta:
        model = Question
        fields = (
            "kind",
            "prompt",
            "tolerance",
            "tolerance_mm",
            "points",
            "explanation",
            "key_source",
            "prior_study",
            "current_study",
        )
        widgets = {
            "prompt": forms.TextInput(),
            "explanation": forms.Textarea(attrs={"rows": 2}),
        }

    # Model fields the form edits through another field; the model's errors go there.
    EDITED_AS = {"options": "options_text"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key_source"].required = False  # left out: the built-in key
        self.fields["tolerance_mm"].required = False  # left out: the model's default

    def _update_errors(self, errors: ValidationError) -> None:
        """Put each of the model's errors under the field the educator typed it in (or above
        the form when no field shows it), never under a field the form lacks."""
        if hasattr(errors, "error_dict"):
            placed: dict[str, list] = {}
            for name, messages in errors.error_dict.items():
                field = self.EDITED_AS.get(name, name)
                placed.setdefault(field if field in self.fields else NON_FIELD_ERRORS, []).extend(
                    messages
                )
            errors = ValidationError(placed)
        super()._update_errors(errors)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["key_source"] = data.get("key_source") or Question.KeySource.BUILT_IN
        if data.get("tolerance_mm") is None:
            data["tolerance_mm"] = Question._meta.get_field("tolerance_mm").default
        options = []
        for line in (data.get("options_text") or "").splitlines():
            if not line.strip():
                continue
            text, _, feedback = line.partition("|")
            correct = text.strip().startswith("*")
            options.append(
                {
                    "text": text.strip().lstrip("*").strip(),
                    "correct": correct,
                    "feedback": feedback.strip(),
                }
            )
        self.instance.options = options
        return data


class KeySourceForm(forms.ModelForm):
    """What a free-text or severity question's answers are scored against."""

    class Meta:
        model = Question
        fields = ("key_source",)


class ItemMoveForm(forms.Form):
    """Move a quiz item one place up or down, or to a position (1 = first)."""

    direction = forms.ChoiceField(choices=[("up", "up"), ("down", "down")], required=False)
    position = forms.IntegerField(min_value=1, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("direction") and data.get("position") is None:
            raise forms.ValidationError("give a direction (up or down) or a position")
        return data

    def target(self, current: int) -> int:
        """The new 0-based position of an item now at ``current`` (0-based)."""
        if self.cleaned_data.get("position") is not None:
            return self.cleaned_data["position"] - 1
        return current - 1 if self.cleaned_data["direction"] == "up" else current + 1


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def response_from_post(question: Question, post: Any, n_images: int) -> dict[str, Any] | None:
    """The response one question's inputs on the item page describe (validated by scoring),
    or None when the trainee left them all empty: that question is not answered yet.

    Staging comes as one "position" select per shown image; it becomes the order of image
    indices, earliest first (an incomplete or repeated ranking fails validation).
    """
    prefix = f"q{question.pk}"
    if not any(name.startswith(f"{prefix}_") and value.strip() for name, value in post.items()):
        return None
    if question.kind == Question.Kind.SINGLE_BEST:
        return {"option": _int(post.get(f"{prefix}_option"))}
    if question.kind == Question.Kind.STAGING:
        positions = [_int(post.get(f"{prefix}_pos_{d}")) for d in range(n_images)]
        if any(p is None for p in positions):
            return {"order": None}
        return {
            "order": sorted(range(n_images), key=lambda d: positions[d])
            if sorted(positions) == list(range(1, n_images + 1))
            else None
        }
    if question.kind == Question.Kind.LOCALISATION:
        return {
            "image": _int(post.get(f"{prefix}_image")),
            "x": _float(post.get(f"{prefix}_x")),
            "y": _float(post.get(f"{prefix}_y")),
        }
    if question.kind == Question.Kind.SEVERITY:
        return {"value": _float(post.get(f"{prefix}_value"))}
    if question.kind == Question.Kind.WHICH_ABNORMAL:
        return {"image": _int(post.get(f"{prefix}_image"))}
    if question.kind == Question.Kind.CHANGE:
        return {"change": post.get(f"{prefix}_change")}
    if question.kind == Question.Kind.IS_NORMAL:
        return {"normal": {"yes": True, "no": False}.get(post.get(f"{prefix}_normal", ""))}
    return {"text": post.get(f"{prefix}_text", "")}
