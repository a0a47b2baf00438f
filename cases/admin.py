from django.contrib import admin

from cases.models import (
    AccessToken,
    CaseTemplate,
    GenerationJob,
    GeneratorModel,
    Instance,
    LesionGroundTruth,
    Operation,
    ReferenceImage,
    ReferencePool,
    Series,
    Study,
    SyntheticPatient,
    TemplateVersion,
)


@admin.register(GeneratorModel)
class GeneratorModelAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "architecture", "modality", "resolution", "is_active")
    readonly_fields = ("sha256",)


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = ("number", "title", "finding", "generator", "created_by", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(CaseTemplate)
class CaseTemplateAdmin(admin.ModelAdmin):
    list_display = ("title", "created_by", "created_at")
    inlines = (TemplateVersionInline,)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    list_display = ("template", "number", "finding", "generator", "created_at")

    def has_change_permission(self, request, obj=None) -> bool:  # versions are immutable
        return False


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ("id", "template_version", "n_cases", "status", "done", "created_at")
    list_filter = ("status",)
    readonly_fields = ("uid", "seed", "worker", "device", "timings", "error")


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    """Background operations, to see what failed and why; the tasks alone change them."""

    list_display = ("id", "title", "requested_by", "status", "done", "total", "created_at")
    list_filter = ("status", "task")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SyntheticPatient)
class SyntheticPatientAdmin(admin.ModelAdmin):
    list_display = ("patient_id", "template_version", "sex", "age_at_first_study", "status")
    list_filter = ("status",)
    readonly_fields = ("seed", "latent_z")


admin.site.register(Study)
admin.site.register(Series)


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ("sop_instance_uid", "series", "severity", "seed")
    readonly_fields = ("latent_w",)


admin.site.register(LesionGroundTruth)


@admin.register(ReferencePool)
class ReferencePoolAdmin(admin.ModelAdmin):
    list_display = ("name", "created_by", "created_at")


@admin.register(ReferenceImage)
class ReferenceImageAdmin(admin.ModelAdmin):
    list_display = ("source_name", "pool", "origin", "modality", "finding", "imported_at")
    list_filter = ("pool", "origin", "modality")
    readonly_fields = ("deidentification",)


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    """Tokens can be seen (by prefix) and revoked here; a new one is made on /dicomweb/ or
    with ``manage.py create_access_token``, the only places its key is shown."""

    list_display = ("user", "prefix", "created_at")
    readonly_fields = ("user", "digest", "prefix", "created_at")

    def has_add_permission(self, request: object) -> bool:
        return False
