"""The DICOM files of cases: WADO-URI retrieval, and export as a DICOM zip (with DICOMDIR) or
to the configured PACS."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from cases.imaging.export import Node, case_instances, export_zip, launch_send
from cases.imaging.teaching_file import export_teaching_file
from cases.models import SyntheticPatient, instances_visible_to
from cases.reference.dicom_import import is_uid

EXPORT_PERMISSION = "cases.change_syntheticpatient"  # educators


def _case(request: HttpRequest, pk: int) -> SyntheticPatient:
    return get_object_or_404(SyntheticPatient.objects.visible_to(request.user), pk=pk)


@permission_required(EXPORT_PERMISSION, raise_exception=True)
def export_page(request: HttpRequest, pk: int) -> HttpResponse:
    case = _case(request, pk)
    context = {"case": case, "count": case_instances(case).count(), "node": Node.configured()}
    return render(request, "cases/export.html", context)


@permission_required(EXPORT_PERMISSION, raise_exception=True)
def export_download(request: HttpRequest, pk: int) -> HttpResponse:
    case = _case(request, pk)
    response = HttpResponse(export_zip(case), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{case.patient_id}-dicom.zip"'
    return response


@permission_required(EXPORT_PERMISSION, raise_exception=True)
def export_teaching_file_zip(request: HttpRequest, pk: int) -> HttpResponse:
    """The case as an IHE TCE teaching file (DICOM media in a zip)."""
    case = _case(request, pk)
    response = HttpResponse(export_teaching_file(case), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{case.patient_id}-teaching-file.zip"'
    return response


@require_POST
@permission_required(EXPORT_PERMISSION, raise_exception=True)
def export_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue the C-STORE of the case to the configured node; answers at once with the
    operation whose page (or progress JSON) gives the status of each instance."""
    case = _case(request, pk)
    node = Node.configured()
    wants_json = "application/json" in request.headers.get("Accept", "")
    if node is None:
        message = "no DICOM node configured (set GANTRY_PACS_HOST, _PORT and _AE)"
        if wants_json:
            return JsonResponse({"error": message}, status=400)
        return render(request, "cases/export.html", {"case": case, "error": message}, status=400)
    operation = launch_send(case, node, user=request.user)
    if wants_json:
        return JsonResponse(
            {
                "operation": operation.pk,
                "status": operation.status,
                "url": operation.get_absolute_url(),
                "progress_url": reverse("operation-progress", args=[operation.pk]),
            },
            status=202,
        )
    return redirect(operation)


@require_GET
@login_required
def wado_uri(request: HttpRequest) -> HttpResponse:
    """WADO-URI (DICOM PS3.18 §9) retrieval of one instance as application/dicom."""
    params = request.GET
    if params.get("requestType") != "WADO":
        return HttpResponseBadRequest("requestType must be WADO")
    missing = [key for key in ("studyUID", "seriesUID", "objectUID") if not params.get(key)]
    if missing:
        return HttpResponseBadRequest(f"missing parameter(s): {', '.join(missing)}")
    malformed = [key for key in ("studyUID", "seriesUID", "objectUID") if not is_uid(params[key])]
    if malformed:
        return HttpResponseBadRequest(f"not a UID (digits and dots): {', '.join(malformed)}")
    content_type = params.get("contentType", "application/dicom")
    if content_type != "application/dicom":
        return HttpResponse(
            f"contentType {content_type} is not supported; use application/dicom", status=406
        )
    instance = (
        instances_visible_to(request.user)
        .filter(
            sop_instance_uid=params["objectUID"],
            series__series_uid=params["seriesUID"],
            series__study__study_uid=params["studyUID"],
        )
        .first()
    )
    if instance is None:
        return HttpResponse("no such instance", status=404, content_type="text/plain")
    response = FileResponse(instance.file.open("rb"), content_type="application/dicom")
    response["Content-Length"] = str(instance.size)
    response["Cache-Control"] = "private, max-age=3600"
    return response
