"""Turing study pages: educators build, watch and close studies; raters read blinded images.

Nothing a rater's browser receives before the study is closed depends on an image's side:
reading pages differ only in the image token and position, and image files are the
blinded copies made when the study was built. The exception is a training study, which
says after each answer what was so. Pages of the uninformed phase never mention synthetic
images.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from cases.models import Operation
from turing import plots
from turing.building import BUILD_TASK, launch_build
from turing.forms import QualityForm, ResponseForm, StartForm, StudyForm, TrialForm
from turing.models import (
    LETTERS,
    QualityRating,
    Response,
    StudyImage,
    StudyRater,
    TrialResponse,
    TuringStudy,
)
from turing.results import csv_text, study_results

RUN_STUDY = "turing.run_study"


def _rater(request: HttpRequest, pk: int) -> StudyRater:
    return get_object_or_404(
        StudyRater.objects.select_related("study"), study_id=pk, user=request.user
    )


def _posted(request: HttpRequest):
    """The POST data of a POST (even an empty one, which must bind and fail), else None."""
    return request.POST if request.method == "POST" else None


def _with_progress(raters):
    """Raters with ``answered``: every answer given, quality scores and readings alike."""
    return raters.annotate(
        answered=Count("responses", distinct=True)
        + Count("trial_responses", distinct=True)
        + Count("quality_ratings", distinct=True)
    ).select_related("user", "study")


@login_required
def study_list(request: HttpRequest) -> HttpResponse:
    readings = _with_progress(StudyRater.objects.filter(user=request.user))
    builds = None
    if request.user.has_perm(RUN_STUDY):
        studies = TuringStudy.objects.annotate(n_raters=Count("rater_set", distinct=True))
        builds = Operation.objects.filter(task=BUILD_TASK, requested_by=request.user).exclude(
            status=Operation.Status.SUCCEEDED
        )[:5]
    elif readings or request.user.has_perm("turing.join_studies"):  # before a first study
        studies = None
    else:
        raise PermissionDenied("Turing studies are for educators, experts and their raters")
    return render(
        request,
        "turing/study_list.html",
        {"studies": studies, "readings": readings, "builds": builds},
    )


@permission_required(RUN_STUDY, raise_exception=True)
def study_create(request: HttpRequest) -> HttpResponse:
    form = StudyForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            operation = launch_build(form.plan(), user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect(operation)
    status = 400 if form.is_bound else 200
    return render(request, "turing/study_form.html", {"form": form}, status=status)


@permission_required(RUN_STUDY, raise_exception=True)
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(TuringStudy.objects.select_related("pool", "generator"), pk=pk)
    raters = _with_progress(study.rater_set.all())
    return render(request, "turing/study_detail.html", {"study": study, "raters": raters})


@require_POST
@permission_required(RUN_STUDY, raise_exception=True)
def study_close(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(TuringStudy, pk=pk)
    study.close()
    messages.success(request, f"Closed; {study.flags.count()} case(s) flagged as recognised.")
    return redirect("turing:results", pk=study.pk)


@login_required
def start(request: HttpRequest, pk: int) -> HttpResponse:
    rater = _rater(request, pk)
    if rater.started_at is not None:
        return redirect("turing:read-next", pk=pk)
    form = StartForm(_posted(request), instance=rater)
    if request.method == "POST" and form.is_valid():
        rater = form.save(commit=False)
        rater.started_at = timezone.now()
        rater.save()
        return redirect("turing:read-next", pk=pk)
    status = 400 if form.is_bound else 200
    context = {"study": rater.study, "rater": rater, "form": form}
    return render(request, "turing/start.html", context, status=status)


@require_POST
@login_required
def pause(request: HttpRequest, pk: int) -> HttpResponse:
    rater = _rater(request, pk)
    StudyRater.objects.filter(pk=rater.pk).update(paused_at=timezone.now())
    messages.success(request, f"Paused “{rater.study}”. Resume whenever you like.")
    return redirect("turing:study-list")


@login_required
def read_next(request: HttpRequest, pk: int) -> HttpResponse:
    rater = _rater(request, pk)
    if rater.study.is_closed:
        return render(request, "turing/closed.html", {"study": rater.study})
    if rater.started_at is None:
        return redirect("turing:start", pk=pk)
    phase = rater.phase()
    if phase == StudyRater.Phase.QUALITY:
        position = rater.next_quality_position(rater.quality_order())
        return redirect("turing:quality", pk=pk, position=position)
    if phase == StudyRater.Phase.DONE:
        return render(request, "turing/done.html", {"study": rater.study, "rater": rater})
    if rater.study.is_forced_choice:
        position = rater.next_trial_position(rater.trial_order())
        return redirect("turing:trial", pk=pk, position=position)
    return redirect("turing:read", pk=pk, position=rater.next_position())


def _may_open(study: TuringStudy, position: int, next_position: int | None) -> bool:
    """The next unanswered image, or an earlier one where the study lets raters go back."""
    if position == next_position:
        return True
    return study.allow_back and (next_position is None or position < next_position)


def _may_read(rater: StudyRater, *, quality: bool, position: int, length: int) -> bool:
    """Whether the rater, in an open study they started, is in the uninformed phase (with
    ``quality``) or past it (without), at a position that exists. Once informed, a rater
    never returns to the uninformed phase. Whether they may open the position is
    ``_may_open``'s question."""
    return (
        not rater.study.is_closed
        and rater.started_at is not None
        and (rater.phase() == StudyRater.Phase.QUALITY) == quality
        and 1 <= position <= length
    )


def _after_answer(study: TuringStudy, position: int) -> HttpResponse:
    if study.training:
        return redirect("turing:feedback", pk=study.pk, position=position)
    return redirect("turing:read-next", pk=study.pk)


def _resume(rater: StudyRater) -> None:
    if rater.paused_at is not None:
        StudyRater.objects.filter(pk=rater.pk).update(paused_at=None)


@login_required
def quality(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    """The uninformed phase: one image, its quality from 1 to 5."""
    rater = _rater(request, pk)
    study = rater.study
    order = rater.quality_order()
    if not _may_read(rater, quality=True, position=position, length=len(order)):
        return redirect("turing:read-next", pk=pk)
    if not _may_open(study, position, rater.next_quality_position(order)):
        return redirect("turing:read-next", pk=pk)
    image = StudyImage.objects.get(pk=order[position - 1])
    previous = QualityRating.objects.filter(rater=rater, image=image).first()
    initial = {"time_ms": 0, "quality": previous.quality if previous else None}
    form = QualityForm(_posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        QualityRating.record(rater=rater, image=image, **form.cleaned_data)
        return redirect("turing:read-next", pk=pk)
    _resume(rater)
    context = _reading_context(study, form, position, len(order), [image], ["Study image"])
    context["title"] = rater.title_for_rater
    return render(request, "turing/quality.html", context, status=400 if form.is_bound else 200)


@login_required
def trial(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    """A forced-choice trial: two or four images side by side, pick one."""
    rater = _rater(request, pk)
    study = rater.study
    order = rater.trial_order() if study.is_forced_choice else []
    if not _may_read(rater, quality=False, position=position, length=len(order)):
        return redirect("turing:read-next", pk=pk)
    if not _may_open(study, position, rater.next_trial_position(order)):
        return redirect("turing:read-next", pk=pk)
    index = order[position - 1]
    shown = study.trials()[index]
    letters = list(LETTERS[: len(shown)])
    previous = TrialResponse.objects.filter(rater=rater, trial=index).first()
    initial = {"time_ms": 0, "pick": letters[shown.index(previous.chosen_id)] if previous else None}
    form = TrialForm(
        _posted(request), initial=initial, letters=letters, picks_synthetic=study.picks_synthetic
    )
    if request.method == "POST" and form.is_valid():
        pick = letters.index(form.cleaned_data["pick"])
        time_ms = form.cleaned_data["time_ms"]
        TrialResponse.record(rater=rater, trial=index, shown=shown, pick=pick, time_ms=time_ms)
        return _after_answer(study, position)
    _resume(rater)
    images = StudyImage.objects.in_bulk(shown)
    context = _reading_context(
        study,
        form,
        position,
        len(order),
        [images[i] for i in shown],
        [f"Image {letter}" for letter in letters],
    )
    context["viewer_data"]["layout"] = {"timepoints": len(shown)}
    return render(request, "turing/trial.html", context, status=400 if form.is_bound else 200)


@login_required
def feedback(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    """A training study's answer to an answer: right or wrong, and which image was what."""
    rater = _rater(request, pk)
    if not rater.study.training:
        raise Http404("only training studies give feedback")
    answer = rater.feedback(position)
    if answer is None:
        return redirect("turing:read-next", pk=pk)
    images = StudyImage.objects.in_bulk(answer.image_ids)
    context = {
        "study": rater.study,
        "feedback": answer,
        "viewer_data": {
            "imageIds": [f"wadouri:{images[i].get_absolute_url()}" for i in answer.image_ids],
            "labels": list(answer.labels),
            "layout": {"timepoints": len(answer.image_ids)},
        },
    }
    return render(request, "turing/feedback.html", context)


@login_required
def read(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    rater = _rater(request, pk)
    study = rater.study
    order = [] if study.is_forced_choice else rater.order()
    next_position = rater.next_position(order)
    if not _may_read(rater, quality=False, position=position, length=len(order)):
        return redirect("turing:read-next", pk=pk)
    if not _may_open(study, position, next_position):
        return redirect("turing:read-next", pk=pk)
    image = StudyImage.objects.get(pk=order[position - 1])
    previous = Response.objects.filter(rater=rater, image=image).first()
    form = ResponseForm(
        _posted(request),
        initial=_initial(previous),
        ask_realism=study.ask_realism,
        ask_comment=study.ask_comment,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        Response.record(
            rater=rater,
            image=image,
            time_ms=data.pop("time_ms"),
            called_synthetic=data.pop("call") == "synthetic",
            **data,
        )
        return _after_answer(study, position)
    _resume(rater)
    context = _reading_context(study, form, position, len(order), [image], ["Reading study image"])
    return render(request, "turing/read.html", context, status=400 if form.is_bound else 200)


def _reading_context(
    study, form, position: int, total: int, images: list, labels: list[str]
) -> dict[str, object]:
    """What every reading page (quality score, forced choice, single image) shows: the
    form, where the rater is, the way back when the study allows it, and the viewer's
    images."""
    return {
        "study": study,
        "form": form,
        "position": position,
        "total": total,
        "back": position - 1 if study.allow_back and position > 1 else None,
        "viewer_data": {
            "imageIds": [f"wadouri:{image.get_absolute_url()}" for image in images],
            "labels": labels,
        },
    }


def _initial(previous: Response | None) -> dict[str, object]:
    if previous is None:
        return {"time_ms": 0}
    return {
        "call": "synthetic" if previous.called_synthetic else "real",
        "confidence": previous.confidence,
        "realism": previous.realism,
        "comment": previous.comment,
        "time_ms": 0,
    }


@require_GET
@login_required
def image(request: HttpRequest, token: str) -> HttpResponse:
    """The blinded DICOM file of one study image, for its study's raters and educators."""
    study_image = get_object_or_404(StudyImage.objects.select_related("study"), token=token)
    if not request.user.has_perm("turing.rate_study", study_image.study):
        raise Http404("no such image")
    response = FileResponse(
        study_image.blinded.open("rb"), content_type="application/dicom", filename=f"{token}.dcm"
    )
    response["Content-Length"] = str(study_image.blinded_size)
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _closed_study_for_results(request: HttpRequest, pk: int) -> TuringStudy:
    study = get_object_or_404(TuringStudy, pk=pk)
    if request.user.has_perm("turing.view_results", study):
        return study
    if not request.user.has_perm("turing.rate_study", study):
        raise PermissionDenied("only the study's educators and raters see its results")
    raise PermissionDenied("results are shown once the study is closed")


@login_required
def results(request: HttpRequest, pk: int) -> HttpResponse:
    study = _closed_study_for_results(request, pk)
    results = study_results(study)
    context = {"study": study, "results": results, "flags": study.flags.select_related("case")}
    analysis = results.analysis
    if analysis is not None:
        sources = {
            image.token: image
            for image in study.images.select_related(
                "instance__series__study__patient", "reference__pool"
            )
        }
        context |= {
            "analysis": analysis,
            "fooling": sorted(
                ((rate, sources[token]) for token, rate in analysis.fooling_rates.items()),
                key=lambda pair: (-pair[0], pair[1].token),
            ),
            "roc_plot": plots.roc_plot(analysis.per_rater),
            "accuracy_plot": plots.accuracy_plot(analysis.per_rater, analysis.pooled),
            "fooling_plot": plots.fooling_plot(analysis.fooling_rates),
        }
    return render(request, "turing/results.html", context)


@require_GET
@login_required
def results_csv(request: HttpRequest, pk: int, part: str = "answers") -> HttpResponse:
    study = _closed_study_for_results(request, pk)
    if part == "quality" and not study.uninformed_phase:
        return HttpResponse(
            "this study had no uninformed phase: it has no quality scores",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(csv_text(study, part), content_type="text/csv; charset=utf-8")
    suffix = "-quality" if part == "quality" else ""
    response["Content-Disposition"] = f'attachment; filename="turing-study-{study.pk}{suffix}.csv"'
    return response
