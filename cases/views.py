"""Pages for templates, generation jobs, generators, cases and background operations."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from cases.forms import GenerateForm, TemplateForm
from cases.imaging.viewer import viewer_data
from cases.model_cards import card_evaluation, card_facts, card_targets, targets_met
from cases.models import (
    CaseTemplate,
    GenerationJob,
    GeneratorFigure,
    GeneratorModel,
    Operation,
    SyntheticPatient,
)
from gantry.permissions import object_or_403


@login_required
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "cases": SyntheticPatient.objects.visible_to(request.user)
        .cases()
        .select_related("template_version")[:12],
    }
    if request.user.has_perm("cases.add_generationjob"):
        context["templates"] = CaseTemplate.objects.all()[:20]
        context["jobs"] = GenerationJob.objects.select_related("template_version")[:10]
    return render(request, "home.html", context)


@permission_required("cases.view_casetemplate", raise_exception=True)
def template_list(request: HttpRequest) -> HttpResponse:
    templates = CaseTemplate.objects.prefetch_related("versions")
    return render(request, "cases/template_list.html", {"templates": templates})


@permission_required("cases.add_casetemplate", raise_exception=True)
def template_create(request: HttpRequest) -> HttpResponse:
    form = TemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        template = CaseTemplate.objects.create(
            title=form.cleaned_data["title"], created_by=request.user
        )
        if _save_version(request, form, template):
            return redirect(template)
        template.delete()
    return render(request, "cases/template_form.html", {"form": form}, status=_status(form))


@permission_required("cases.change_casetemplate", raise_exception=True)
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = object_or_403(request, CaseTemplate, "cases.edit_template", pk=pk)
    form = TemplateForm(request.POST or None, initial=TemplateForm.initial_from(template.current))
    if request.method == "POST" and form.is_valid() and _save_version(request, form, template):
        return redirect(template)
    return render(
        request,
        "cases/template_form.html",
        {"form": form, "template": template},
        status=_status(form),
    )


def _status(form: TemplateForm) -> int:
    return 400 if form.is_bound and form.errors else 200


def _save_version(request: HttpRequest, form: TemplateForm, template: CaseTemplate) -> bool:
    try:
        version = template.add_version(author=request.user, **form.version_content())
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return False
    template.co_authors.set(form.cleaned_data["co_authors"])
    messages.success(request, f"Saved version {version.number}.")
    return True


def _template_page(
    request: HttpRequest,
    template: CaseTemplate,
    *,
    generate_form: GenerateForm | None = None,
    status: int = 200,
) -> HttpResponse:
    versions = template.versions.select_related("generator")
    jobs = GenerationJob.objects.filter(template_version__template=template).select_related(
        "template_version", "requested_by"
    )
    context = {
        "template": template,
        "may_edit": request.user.has_perm("cases.edit_template", template),
        "version": versions.first(),
        "versions": versions,
        "jobs": jobs,
        "generate_form": generate_form or GenerateForm(),
    }
    return render(request, "cases/template_detail.html", context, status=status)


@permission_required("cases.view_casetemplate", raise_exception=True)
def template_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _template_page(request, get_object_or_404(CaseTemplate, pk=pk))


@require_POST
@permission_required("cases.add_generationjob", raise_exception=True)
def job_launch(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(CaseTemplate, pk=pk)
    form = GenerateForm(request.POST)
    if not form.is_valid():
        return _template_page(request, template, generate_form=form, status=400)
    try:
        job = template.current.launch_job(
            requested_by=request.user,
            n_cases=form.cleaned_data["n_cases"],
            seed=form.cleaned_data["seed"],
            with_twins=form.cleaned_data["with_twins"],
        )
    except ValidationError as exc:
        form.add_error(None, exc.messages)
        return _template_page(request, template, generate_form=form, status=400)
    n = job.n_cases
    messages.success(request, f"Job {job.pk} queued: {n} case{'s' * (n != 1)}.")
    return redirect(template)


@require_GET
@permission_required("cases.view_generationjob", raise_exception=True)
def job_progress(request: HttpRequest, pk: int) -> JsonResponse:
    job = get_object_or_404(GenerationJob, pk=pk)
    return JsonResponse({**job.progress_dict(), "cases_url": job_cases_url(job)})


def job_cases_url(job: GenerationJob) -> str:
    return f"{reverse('case-list')}?job={job.pk}"


def _operation(request: HttpRequest, pk: int) -> Operation:
    """The operation, for the user who asked for it (or a superuser); others get a 404."""
    operations = Operation.objects.all()
    if not request.user.is_superuser:
        operations = operations.filter(requested_by=request.user)
    return get_object_or_404(operations, pk=pk)


@login_required
def operation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An operation's progress while it runs (the page polls it), then its result."""
    return render(request, "cases/operation.html", {"operation": _operation(request, pk)})


@require_GET
@login_required
def operation_progress(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(_operation(request, pk).progress_dict())


@permission_required("cases.view_generatormodel", raise_exception=True)
def generator_list(request: HttpRequest) -> HttpResponse:
    rows = [(g, targets_met(g.model_card)) for g in GeneratorModel.objects.all()]
    return render(request, "cases/generator_list.html", {"rows": rows})


@permission_required("cases.view_generatormodel", raise_exception=True)
def generator_detail(request: HttpRequest, pk: int) -> HttpResponse:
    generator = get_object_or_404(GeneratorModel, pk=pk)
    card = generator.model_card
    return render(
        request,
        "cases/generator_detail.html",
        {
            "generator": generator,
            "facts": card_facts(card),
            "targets": card_targets(card),
            "evaluation": card_evaluation(card),
            "card_json": json.dumps(card, indent=2, ensure_ascii=False),
        },
    )


@permission_required("cases.view_generatormodel", raise_exception=True)
def generator_figure(request: HttpRequest, pk: int, figure_pk: int) -> FileResponse:
    figure = get_object_or_404(GeneratorFigure, pk=figure_pk, generator_id=pk)
    return FileResponse(figure.image.open("rb"), content_type="image/png")


@login_required
def case_list(request: HttpRequest) -> HttpResponse:
    cases = (
        SyntheticPatient.objects.visible_to(request.user)
        .cases()
        .select_related("template_version", "job")
    )
    job = request.GET.get("job", "")
    if job.isdigit():
        cases = cases.filter(job_id=int(job))
    return render(request, "cases/case_list.html", {"cases": cases, "job": job})


@login_required
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    visible = SyntheticPatient.objects.visible_to(request.user)
    case = get_object_or_404(visible, pk=pk)
    studies = case.studies.prefetch_related("series__instances")
    # The other side of a case and its normal twin, where this user may see it.
    twin = visible.filter(Q(twin_of=case) | Q(normal_twin=case)).first()
    return render(
        request,
        "cases/case_detail.html",
        {
            "case": case,
            "twin": twin,
            "version": case.template_version,
            "studies": studies,
            "viewer_data": viewer_data(studies),
        },
    )
