from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from cases.models import GeneratorModel, ReferencePool, SyntheticPatient
from cases.roles import EXPERT
from turing.building import MAX_IMAGES, StudyPlan
from turing.models import StudyRater

ONE_TO_FIVE = [(i, str(i)) for i in range(1, 6)]
MAX_TIME_MS = 24 * 3600 * 1000


class StudyForm(forms.Form):
    title = forms.CharField(max_length=200)
    generator = forms.ModelChoiceField(
        GeneratorModel.objects.filter(is_active=True),
        required=False,
        help_text="Synthetic side: every approved case of this generator…",
    )
    cases = forms.ModelMultipleChoiceField(
        SyntheticPatient.objects.filter(status=SyntheticPatient.Status.APPROVED),
        required=False,
        help_text="…or exactly these approved cases.",
    )
    pool = forms.ModelChoiceField(
        ReferencePool.objects.filter(holds_synthetic=False), label="Real reference pool"
    )
    n_images = forms.IntegerField(min_value=2, max_value=MAX_IMAGES, initial=60)
    synthetic_ratio = forms.FloatField(
        min_value=0.05, max_value=0.95, initial=0.5, help_text="Share of synthetic images."
    )
    raters = forms.ModelMultipleChoiceField(
        get_user_model().objects.filter(groups__name=EXPERT).order_by("username"),
        help_text="Expert raters.",
    )
    ask_realism = forms.BooleanField(required=False, label="Ask for a realism score (1 to 5)")
    ask_comment = forms.BooleanField(required=False, label="Ask for a free comment")
    allow_back = forms.BooleanField(required=False, label="Raters may go back")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if bool(data.get("generator")) == bool(data.get("cases")):
            raise forms.ValidationError("Choose either a generator or a set of approved cases.")
        return data

    def plan(self) -> StudyPlan:
        data = self.cleaned_data
        return StudyPlan(
            title=data["title"],
            pool=data["pool"],
            n_images=data["n_images"],
            synthetic_ratio=data["synthetic_ratio"],
            raters=list(data["raters"]),
            generator=data["generator"],
            cases=list(data["cases"]),
            ask_realism=data["ask_realism"],
            ask_comment=data["ask_comment"],
            allow_back=data["allow_back"],
        )


class StartForm(forms.ModelForm):
    class Meta:
        model = StudyRater
        fields = ("experience_years",)
        labels = {"experience_years": "Years of reading experience (optional)"}


class ResponseForm(forms.Form):
    """One answer; the realism and comment fields exist only where the study asks for them."""

    call = forms.ChoiceField(
        choices=[("real", "Real"), ("synthetic", "Synthetic")], widget=forms.RadioSelect
    )
    confidence = forms.TypedChoiceField(
        choices=ONE_TO_FIVE,
        coerce=int,
        widget=forms.RadioSelect,
        help_text="1 = guessing, 5 = certain",
    )
    realism = forms.TypedChoiceField(
        choices=ONE_TO_FIVE,
        coerce=int,
        required=False,
        empty_value=None,
        widget=forms.RadioSelect,
        help_text="1 = clearly artificial, 5 = indistinguishable from clinical images",
    )
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    time_ms = forms.IntegerField(min_value=0, max_value=MAX_TIME_MS, widget=forms.HiddenInput)

    def __init__(self, *args: Any, ask_realism: bool, ask_comment: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not ask_realism:
            del self.fields["realism"]
        if not ask_comment:
            del self.fields["comment"]
