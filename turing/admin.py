from django.contrib import admin

from turing.models import (
    CaseFlag,
    QualityRating,
    Response,
    StudyImage,
    StudyRater,
    TrialResponse,
    TuringStudy,
)


class StudyRaterInline(admin.TabularInline):
    model = StudyRater
    fields = ("user", "experience_years", "order_seed", "started_at", "paused_at")
    readonly_fields = ("order_seed",)
    extra = 0


@admin.register(TuringStudy)
class TuringStudyAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "status",
        "format",
        "training",
        "n_images",
        "synthetic_ratio",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "format", "training", "uninformed_phase")
    inlines = [StudyRaterInline]
    readonly_fields = ("seed", "modality", "image_size", "pixel_spacing_mm")


@admin.register(StudyImage)
class StudyImageAdmin(admin.ModelAdmin):
    list_display = ("token", "study", "side")
    list_filter = ("side",)


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ("rater", "image", "called_synthetic", "confidence", "time_on_image_ms")


@admin.register(QualityRating)
class QualityRatingAdmin(admin.ModelAdmin):
    list_display = ("rater", "image", "quality", "time_on_image_ms")


@admin.register(TrialResponse)
class TrialResponseAdmin(admin.ModelAdmin):
    list_display = ("rater", "trial", "chosen", "correct", "time_on_image_ms")


@admin.register(CaseFlag)
class CaseFlagAdmin(admin.ModelAdmin):
    list_display = ("case", "study", "images_flagged", "images_in_study", "created_at")
