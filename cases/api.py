"""REST API (``/api/``): generators, templates (edits create versions), jobs, cases."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cases.models import CaseTemplate, GenerationJob, GeneratorModel, SyntheticPatient
from cases.serializers import (
    CaseSerializer,
    GeneratorSerializer,
    JobSerializer,
    LaunchSerializer,
    TemplateSerializer,
    TemplateVersionSerializer,
)


def requires(read: str, write: str | None = None) -> type[permissions.BasePermission]:
    """A permission class: ``read`` for safe methods, ``write`` (or nobody) for the rest."""

    class RolePermission(permissions.BasePermission):
        def has_permission(self, request: Request, view: object) -> bool:
            if request.method in permissions.SAFE_METHODS:
                return request.user.has_perm(read)
            return write is not None and request.user.has_perm(write)

    return RolePermission


def _as_drf_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class GeneratorViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = GeneratorModel.objects.all()
    serializer_class = GeneratorSerializer
    permission_classes = [requires("cases.view_generatormodel")]


class TemplateViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Create takes a version's content; update adds a new version; nothing is overwritten."""

    queryset = CaseTemplate.objects.prefetch_related("versions")
    serializer_class = TemplateSerializer
    permission_classes = [requires("cases.view_casetemplate", "cases.change_casetemplate")]

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        content = TemplateVersionSerializer(data=request.data)
        content.is_valid(raise_exception=True)
        template = CaseTemplate.objects.create(
            title=content.validated_data["title"], created_by=request.user
        )
        try:
            template.add_version(author=request.user, **content.validated_data)
        except DjangoValidationError as exc:
            template.delete()
            raise _as_drf_error(exc) from exc
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: object, **kwargs: object) -> Response:
        template = self.get_object()
        content = TemplateVersionSerializer(data=request.data)
        content.is_valid(raise_exception=True)
        try:
            template.add_version(author=request.user, **content.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        return Response(TemplateSerializer(self.get_queryset().get(pk=template.pk)).data)

    @action(
        detail=True,
        methods=["post"],
        permission_classes=[requires("cases.view_casetemplate", "cases.add_generationjob")],
    )
    def generate(self, request: Request, pk: str | None = None) -> Response:
        """Launch a generation job from the template's current version."""
        launch = LaunchSerializer(data=request.data)
        launch.is_valid(raise_exception=True)
        job = self.get_object().current.launch_job(
            requested_by=request.user, **launch.validated_data
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = GenerationJob.objects.all()
    serializer_class = JobSerializer
    permission_classes = [requires("cases.view_generationjob")]


class CaseViewSet(viewsets.ReadOnlyModelViewSet):
    """Cases the user may see: everything for educators and experts, approved ones for trainees."""

    serializer_class = CaseSerializer

    def get_queryset(self) -> QuerySet[SyntheticPatient]:
        return (
            SyntheticPatient.objects.visible_to(self.request.user)
            .select_related("template_version")
            .prefetch_related("studies__series__instances")
        )
