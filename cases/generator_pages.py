"""Pages for generators brought to the site: upload a StyleGAN pickle (converted in the
background), teach an unconditional one a finding's direction from labelled samples, accept
its preview, and publish the generator to the template form."""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from cases.generation.imported_models import (
    SAMPLES_TASK,
    launch_fit,
    launch_samples,
    launch_stylegan_import,
)
from cases.models import GeneratorModel, GeneratorSample, Operation, TaughtDirection
from genworker.stylegan.direction_fit import MIN_PER_LABEL  # numpy only, no torch

FINDING = re.compile(r"^[a-z][a-z0-9 _-]{0,63}$")
SHOWS, DOES_NOT = "shows", "does-not"


def clean_finding(value: str) -> str:
    value = value.strip().lower()
    if not FINDING.match(value):
        raise ValidationError(
            f"{value!r} is not a finding's name: lower-case letters, digits, spaces, - or _, "
            "starting with a letter"
        )
    return value


class StyleGANUploadForm(forms.Form):
    network = forms.FileField(
        label="Network pickle",
        help_text="A StyleGAN2-ADA or StyleGAN3 snapshot (network-snapshot-*.pkl). It is read "
        "as data and never run: a pickle that asks for anything else is refused.",
    )
    name = forms.SlugField(max_length=100, help_text="Short name: letters, digits, - and _.")
    title = forms.CharField(max_length=200, help_text="What educators see.")
    modality = forms.ChoiceField(choices=[("MR", "MR"), ("DX", "DX (radiograph)")])
    findings = forms.CharField(
        required=False,
        help_text="A class-conditional model: one name per class, in class order, 'normal' for "
        "the healthy class (e.g. normal, glioma). An unconditional model: the findings to "
        "teach it from labelled samples.",
    )
    licence = forms.CharField(max_length=200, help_text="Under which the weights may be used.")
    citation = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    pixel_spacing_mm = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=10.0,
        label="Pixel spacing (mm)",
        help_text="Written into each image (default: the modality's field of view).",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if GeneratorModel.objects.filter(name=name).exists():
            raise ValidationError(f"a generator is already named {name}")
        return name

    def clean_findings(self) -> list[str]:
        names = [clean_finding(n) for n in self.cleaned_data["findings"].split(",") if n.strip()]
        if len(set(names)) != len(names):
            raise ValidationError("each finding once")
        return names

    def card(self) -> dict:
        """The plain values the import task writes into the model card."""
        data = self.cleaned_data
        keys = ("name", "title", "modality", "findings", "licence", "citation", "pixel_spacing_mm")
        return {key: data[key] for key in keys}


@permission_required("cases.add_generatormodel", raise_exception=True)
def stylegan_upload(request: HttpRequest) -> HttpResponse:
    """Upload a pickle; the conversion runs as an operation whose page the answer opens."""
    form = StyleGANUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        operation = launch_stylegan_import(
            form.cleaned_data["network"], card=form.card(), user=request.user
        )
        return redirect(operation)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "cases/stylegan_upload.html", {"form": form}, status=status)


@require_POST
@permission_required("cases.add_generatormodel", raise_exception=True)
def generator_publish(request: HttpRequest, pk: int) -> HttpResponse:
    """Offer the generator to the template form (or withdraw it)."""
    generator = get_object_or_404(GeneratorModel, pk=pk)
    publish = request.POST.get("publish") != "0"
    if publish and generator.needs_taught_directions and not generator.approved_directions():
        return HttpResponse(
            f"{generator.title} is unconditional: teach it a direction and accept its preview "
            "before publishing it.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    GeneratorModel.objects.filter(pk=pk).update(is_active=publish)
    messages.success(request, f"{generator.title} {'published' if publish else 'withdrawn'}.")
    return redirect(generator)


def _unconditional(pk: int) -> GeneratorModel:
    generator = get_object_or_404(GeneratorModel, pk=pk)
    if not generator.needs_taught_directions:
        raise Http404("only unconditional imported generators are taught directions")
    return generator


def read_labels(post, seeds: list[int]) -> dict[str, bool]:
    """``label-<seed>`` = shows / does-not for each sample labelled; unlabelled ones left out."""
    labels = {}
    for seed in seeds:
        value = post.get(f"label-{seed}", "")
        if value in (SHOWS, DOES_NOT):
            labels[str(seed)] = value == SHOWS
        elif value:
            raise ValidationError(f"sample {seed}: {value!r} is neither {SHOWS} nor {DOES_NOT}")
    return labels


@permission_required("cases.teach_direction", raise_exception=True)
def direction_teach(request: HttpRequest, pk: int) -> HttpResponse:
    """The samples to label for a finding, the fit's preview, and accepting it."""
    generator = _unconditional(pk)
    if request.method == "POST":
        return _teaching_action(request, generator)
    finding = request.GET.get("finding", "")
    try:
        finding = clean_finding(finding) if finding else ""
    except ValidationError as exc:
        return _teaching_page(request, generator, "", error=" ".join(exc.messages))
    return _teaching_page(request, generator, finding)


def _teaching_action(request: HttpRequest, generator: GeneratorModel) -> HttpResponse:
    """Draw the samples, fit a direction to the posted labels, or accept a fit's preview."""
    action = request.POST.get("action")
    if action == "draw":
        return redirect(launch_samples(generator, user=request.user))
    finding, seeds = "", [sample.seed for sample in generator.samples.all()]
    try:
        finding = clean_finding(request.POST.get("finding", ""))
        if action == "fit":
            labels = read_labels(request.POST, seeds)
            _check_counts(labels)
            direction, _ = TaughtDirection.objects.get_or_create(
                generator=generator, finding=finding
            )
            return redirect(launch_fit(direction, labels, user=request.user))
        if action == "approve":
            get_object_or_404(generator.taught_directions, finding=finding).approve()
            messages.success(request, f"Cases of {finding} now walk along this direction.")
            return redirect(f"{request.path}?{urlencode({'finding': finding})}")
        raise ValidationError(f"unknown action {action!r}: draw, fit or approve")
    except ValidationError as exc:
        labels = _posted(request.POST, seeds)
        return _teaching_page(request, generator, finding, labels, error=" ".join(exc.messages))


def _teaching_page(
    request: HttpRequest,
    generator: GeneratorModel,
    finding: str,
    labels: dict[str, bool] | None = None,
    *,
    error: str = "",
) -> HttpResponse:
    """The page; with ``error``, a 400 that keeps the labels as posted."""
    direction = generator.taught_directions.filter(finding=finding).first() if finding else None
    if labels is None:
        labels = direction.labels if direction else {}
    drawing = Operation.objects.filter(
        task=SAMPLES_TASK, params__generator=generator.pk, status__in=("queued", "running")
    ).first()
    taught = generator.taught_directions.values_list("finding", flat=True)
    return render(
        request,
        "cases/direction_teach.html",
        {
            "generator": generator,
            "finding": finding,
            "findings": sorted({*generator.findings, *taught}),
            "direction": direction,
            "rows": [(s, _label_value(labels.get(str(s.seed)))) for s in generator.samples.all()],
            "min_per_label": MIN_PER_LABEL,
            "drawing": drawing,
            "error": error,
        },
        status=400 if error else 200,
    )


def _check_counts(labels: dict[str, bool]) -> None:
    shows = sum(labels.values())
    does_not = len(labels) - shows
    if min(shows, does_not) < MIN_PER_LABEL:
        raise ValidationError(
            f"Label at least {MIN_PER_LABEL} samples that show the finding and {MIN_PER_LABEL} "
            f"that do not (now {shows} and {does_not})."
        )


def _posted(post, seeds: list[int]) -> dict[str, bool]:
    """The labels as posted, kept on a page that refuses them."""
    return {
        str(seed): post.get(f"label-{seed}") == SHOWS
        for seed in seeds
        if post.get(f"label-{seed}") in (SHOWS, DOES_NOT)
    }


def _label_value(shows: bool | None) -> str:
    return "" if shows is None else (SHOWS if shows else DOES_NOT)


@permission_required("cases.view_generatormodel", raise_exception=True)
def generator_sample(request: HttpRequest, pk: int, seed: int) -> FileResponse:
    sample = get_object_or_404(GeneratorSample, generator_id=pk, seed=seed)
    return FileResponse(sample.image.open("rb"), content_type="image/png")


@permission_required("cases.view_generatormodel", raise_exception=True)
def direction_preview(request: HttpRequest, pk: int, direction_pk: int) -> FileResponse:
    direction = get_object_or_404(TaughtDirection, pk=direction_pk, generator_id=pk)
    if not direction.preview:
        raise Http404("no preview yet")
    return FileResponse(direction.preview.open("rb"), content_type="image/png")
