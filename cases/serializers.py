"""API representations of generators, templates, jobs and cases."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cases.models import (
    CaseTemplate,
    GenerationJob,
    GeneratorModel,
    Instance,
    Study,
    SyntheticPatient,
    TemplateVersion,
)
from gantry.permissions import users_with


class GeneratorSerializer(serializers.ModelSerializer):
    class Meta:
        model = GeneratorModel
        fields = (
            "id",
            "name",
            "title",
            "sha256",
            "architecture",
            "modality",
            "resolution",
            "conditions_schema",
            "model_card",
        )


class TemplateVersionSerializer(serializers.ModelSerializer):
    generator = serializers.PrimaryKeyRelatedField(queryset=GeneratorModel.objects.all())

    class Meta:
        model = TemplateVersion
        fields = (
            "id",
            "number",
            "title",
            "modality",
            "body_region",
            "finding",
            "generator",
            "truncation",
            "progression",
            "patient_recipe",
            "history",
            "findings_text",
            "diagnosis",
            "discussion",
            "teaching_points",
            "question_stems",
            "created_at",
        )
        read_only_fields = ("id", "number", "modality", "created_at")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["modality"] = attrs["generator"].modality
        return attrs


class TemplateSerializer(serializers.ModelSerializer):
    current = TemplateVersionSerializer(read_only=True)
    versions = serializers.SerializerMethodField()
    owner = serializers.IntegerField(source="created_by_id", read_only=True)
    co_authors = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = CaseTemplate
        fields = ("id", "title", "owner", "co_authors", "current", "versions", "created_at")

    def get_versions(self, obj: CaseTemplate) -> list[int]:
        return [v.number for v in obj.versions.all()]


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = GenerationJob
        fields = (
            "id",
            "uid",
            "template_version",
            "n_cases",
            "with_twins",
            "seed",
            "status",
            "done",
            "error",
            "device",
            "created_at",
            "started_at",
            "finished_at",
            "timings",
        )
        read_only_fields = fields


class LaunchSerializer(serializers.Serializer):
    n_cases = serializers.IntegerField(min_value=1, max_value=GenerationJob.MAX_CASES)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    with_twins = serializers.BooleanField(required=False, default=False)


class InstanceSerializer(serializers.ModelSerializer):
    wado_uri = serializers.CharField(read_only=True)

    class Meta:
        model = Instance
        fields = (
            "sop_instance_uid",
            "sop_class_uid",
            "instance_number",
            "seed",
            "truncation",
            "severity",
            "wado_uri",
        )


class StudySerializer(serializers.ModelSerializer):
    instances = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = ("study_uid", "study_date", "timepoint", "severity", "instances")

    def get_instances(self, study: Study) -> list[dict[str, Any]]:
        rows = [i for s in study.series.all() for i in s.instances.all()]
        return InstanceSerializer(rows, many=True).data


class CaseSerializer(serializers.ModelSerializer):
    finding = serializers.CharField(read_only=True)
    studies = StudySerializer(many=True, read_only=True)

    class Meta:
        model = SyntheticPatient
        fields = (
            "id",
            "patient_id",
            "sex",
            "age_at_first_study",
            "comorbidities",
            "history",
            "finding",
            "status",
            "template_version",
            "job",
            "case_index",
            "seed",
            "studies",
        )


class CoAuthorsSerializer(serializers.Serializer):
    """Who may edit a template besides its owner: users who could author it."""

    co_authors = serializers.PrimaryKeyRelatedField(
        many=True, queryset=users_with("cases.change_casetemplate")
    )
