from django.contrib import admin

from lti.models import Platform, ScoreReport


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ("registration", "cohort")


@admin.register(ScoreReport)
class ScoreReportAdmin(admin.ModelAdmin):
    list_display = ("attempt", "registration", "status", "sent_at")
    list_filter = ("status", "registration")
    readonly_fields = ("sent_score", "sent_at", "error")
