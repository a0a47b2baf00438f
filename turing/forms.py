from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms

from cases.models import GeneratorModel, ReferencePool, SyntheticPatient
from gantry import scales
from gantry.permissions import users_with
from turing import available
from turing.building import MAX_IMAGES, StudyPlan
from turing.models import StudyRater, TuringStudy

MAX_TIME_MS = 24 * 3600 * 1000


class _Counted:
    """Labels each choice with how many images it offers (``counts()``: pk -> words),
    counted once per form."""

    def __init__(self, *args: Any, counts: Callable[[], dict[int, str]], **kwargs: Any) -> None:
        self.counts, self._counted = counts, None
        super().__init__(*args, **kwargs)

    def label_from_instance(self, obj: Any) -> str:
        if self._counted is None:
            self._counted = self.counts()
        return f"{obj} ({self._counted.get(obj.pk, 'no images')})"


class CountedChoiceField(_Counted, forms.ModelChoiceField):
    pass


class CountedMultipleChoiceField(_Counted, forms.ModelMultipleChoiceField):
    pass


class StudyForm(forms.Form):
    """The counts in the choices are what a study can draw now: approved synthetic images
    per generator and per case, and pool images per modality."""

    title = forms.CharField(max_length=200)
    generator = CountedChoiceField(
        GeneratorModel.objects.filter(is_active=True),
        required=False,
        counts=available.synthetic_by_generator,
        help_text="Synthetic side: every approved case of this generator…",
    )
    cases = CountedMultipleChoiceField(
        SyntheticPatient.objects.cases().filter(status=SyntheticPatient.Status.APPROVED),
        required=False,
        counts=available.synthetic_by_case,
        help_text="…or exactly these approved cases.",
    )
    pool = CountedChoiceField(
        ReferencePool.objects.filter(holds_synthetic=False),
        label="Real reference pool",
        counts=available.real_by_pool,
    )
    n_images = forms.IntegerField(
        min_value=2,
        max_value=MAX_IMAGES,
        initial=60,
        help_text="Each side must have enough images of the generator's modality: 60 images "
        "at a synthetic share of 0.5 draw 30 synthetic and 30 real ones.",
    )
    synthetic_ratio = forms.FloatField(
        min_value=0.05, max_value=0.95, initial=0.5, help_text="Share of synthetic images."
    )
    raters = forms.ModelMultipleChoiceField(
        users_with("turing.join_studies"),
        help_text="Expert raters.",
    )
    ask_realism = forms.BooleanField(required=False, label="Ask for a realism score (1 to 5)")
    ask_comment = forms.BooleanField(required=False, label="Ask for a free comment")
    allow_back = forms.BooleanField(required=False, label="Raters may go back")
    format = forms.TypedChoiceField(
        choices=TuringStudy.Format.choices,
        required=False,
        empty_value=TuringStudy.Format.SINGLE,
        initial=TuringStudy.Format.SINGLE,
        help_text="Forced-choice trials use every synthetic image once, beside real images "
        "dealt in turn (4AFC needs three real images).",
    )
    uninformed_phase = forms.BooleanField(
        required=False,
        label="Begin with an uninformed phase",
        help_text="Raters first score each image's quality, without being told that "
        "synthetic images are present; then the real-or-synthetic reading starts.",
    )
    training = forms.BooleanField(
        required=False,
        label="Training (deepfake spotting)",
        help_text="Tell raters after every answer whether they were right; the results are "
        "not recorded on the generator's card.",
    )

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
            format=data["format"],
            uninformed_phase=data["uninformed_phase"],
            training=data["training"],
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
        choices=scales.CONFIDENCE, coerce=int, widget=forms.RadioSelect
    )
    realism = forms.TypedChoiceField(
        choices=scales.REALISM,
        coerce=int,
        required=False,
        empty_value=None,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    time_ms = forms.IntegerField(min_value=0, max_value=MAX_TIME_MS, widget=forms.HiddenInput)

    def __init__(self, *args: Any, ask_realism: bool, ask_comment: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not ask_realism:
            del self.fields["realism"]
        if not ask_comment:
            del self.fields["comment"]


class QualityForm(forms.Form):
    """An image-quality score of the uninformed phase."""

    quality = forms.TypedChoiceField(choices=scales.QUALITY, coerce=int, widget=forms.RadioSelect)
    time_ms = forms.IntegerField(min_value=0, max_value=MAX_TIME_MS, widget=forms.HiddenInput)


class TrialForm(forms.Form):
    """A forced-choice pick: the letter of one of the trial's images."""

    pick = forms.ChoiceField(widget=forms.RadioSelect)
    time_ms = forms.IntegerField(min_value=0, max_value=MAX_TIME_MS, widget=forms.HiddenInput)

    def __init__(self, *args: Any, letters: list[str], picks_synthetic: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["pick"].choices = [(letter, letter) for letter in letters]
        self.fields["pick"].label = (
            "Which image is synthetic?" if picks_synthetic else "Which image is real?"
        )
