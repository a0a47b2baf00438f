"""REST API (``/api/``): generators, templates (edits create versions), jobs, cases."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from cases.models import CaseTemplate, GenerationJob, GeneratorModel, SyntheticPatient
from cases.serializers import (
    CaseSerializer,
    CoAuthorsSerializer,
    GeneratorSerializer,
    JobSerializer,
    LaunchSerializer,
    TemplateSerializer,
    TemplateVersionSerializer,
)
from gantry.permissions import ObjectRules, Perms


class GeneratorViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = GeneratorModel.objects.all()
    serializer_class = GeneratorSerializer
    permission_classes = [Perms]
    required_perms = {"*": ["cases.view_generatormodel"]}


class TemplateViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Create takes a version's content; update adds a new version; nothing is overwritten."""

    queryset = CaseTemplate.objects.select_related("created_by").prefetch_related(
        "versions", "co_authors"
    )
    serializer_class = TemplateSerializer
    permission_classes = [Perms, ObjectRules]
    required_perms = {
        "*": ["cases.view_casetemplate"],
        "create": ["cases.add_casetemplate"],
        "update": ["cases.change_casetemplate"],
        "partial_update": ["cases.change_casetemplate"],
        "co_authors": ["cases.change_casetemplate"],
        "generate": ["cases.view_casetemplate", "cases.add_generationjob"],
    }
    object_rules = {
        "update": "cases.edit_template",
        "partial_update": "cases.edit_template",
        "co_authors": "cases.edit_template",
    }

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        content = TemplateVersionSerializer(data=request.data)
        content.is_valid(raise_exception=True)
        template = CaseTemplate.objects.create(
            title=content.validated_data["title"], created_by=request.user
        )
        try:
            template.add_version(author=request.user, **content.validated_data)
        except DjangoValidationError:
            template.delete()
            raise  # 400 with the messages by field (gantry.api.exception_handler)
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: object, **kwargs: object) -> Response:
        template = self.get_object()
        content = TemplateVersionSerializer(data=request.data)
        content.is_valid(raise_exception=True)
        template.add_version(author=request.user, **content.validated_data)
        return Response(TemplateSerializer(self.get_queryset().get(pk=template.pk)).data)

    @action(detail=True, methods=["put"], url_path="co-authors")
    def co_authors(self, request: Request, pk: str | None = None) -> Response:
        """Replace the template's co-authors: ``{"co_authors": [user id, ...]}``; its owner and
        co-authors may."""
        template = self.get_object()
        data = CoAuthorsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template.co_authors.set(data.validated_data["co_authors"])
        return Response(TemplateSerializer(self.get_queryset().get(pk=template.pk)).data)

    @action(detail=True, methods=["post"])
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
    permission_classes = [Perms]
    required_perms = {"*": ["cases.view_generationjob"]}


class CaseViewSet(viewsets.ReadOnlyModelViewSet):
    """Cases the user may see: everything for educators and experts, approved ones for trainees."""

    serializer_class = CaseSerializer

    def get_queryset(self) -> QuerySet[SyntheticPatient]:
        return (
            SyntheticPatient.objects.visible_to(self.request.user)
            .cases()
            .select_related("template_version")
            .prefetch_related("studies__series__instances")
        )
