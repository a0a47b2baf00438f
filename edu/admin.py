"""Admin pages of edu: quizzes with their items and questions, attempts with their answers,
reviews and curation rules, practice difficulty dials, concept cards with their review
logs. What decides a score (a published quiz's items and questions, answers and their
scores) or a schedule is shown, not edited: the pages and the API are the way to change a
quiz (a published one by a new version) or to grade an answer."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from edu.models import (
    Answer,
    Attempt,
    ConceptCard,
    CurationRule,
    DifficultyDial,
    ManualApproval,
    Question,
    Quiz,
    QuizItem,
    Review,
    ReviewLog,
)


class QuizItemInline(admin.TabularInline):
    model = QuizItem
    fields = ("order", "case")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Quiz)
class QuizAdmin(admin.ModelAdmin):
    list_display = ("title", "mode", "cohort", "is_published", "created_by", "created_at")
    list_filter = ("mode", "is_published", "cohort")
    search_fields = ("title",)
    readonly_fields = ("is_published", "created_by", "created_at")
    inlines = (QuizItemInline,)


class QuestionInline(admin.StackedInline):
    model = Question
    fields = ("order", "kind", "prompt", "options", "points", "explanation", "key_source")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(QuizItem)
class QuizItemAdmin(admin.ModelAdmin):
    list_display = ("quiz", "order", "case")
    list_filter = ("quiz",)
    readonly_fields = ("quiz", "case", "order")
    inlines = (QuestionInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class AnswerInline(admin.TabularInline):
    model = Answer
    fields = ("question", "response", "score", "graded_by", "answered_at", "time_on_item_s")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "quiz",
        "is_exam",
        "is_reference",
        "started_at",
        "finished_at",
        "percent",
    )
    list_filter = ("is_exam", "is_reference", "quiz")
    search_fields = ("user__username", "quiz__title")
    date_hierarchy = "started_at"
    readonly_fields = (
        "quiz",
        "user",
        "is_exam",
        "is_reference",
        "retry_of",
        "item_ids",
        "seed",
        "started_at",
        "finished_at",
        "shown_at",
    )
    inlines = (AnswerInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="score (%)")
    def percent(self, attempt: Attempt) -> float | None:
        return attempt.score()["percent"]


def _decide_again(case: Any) -> None:
    CurationRule.for_template(case.template_version.template).apply(case)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    """Editing or deleting a review here decides its case's status again, as the pages do."""

    list_display = ("case", "expert", "realism", "shows_finding", "teaching_value", "updated_at")
    list_filter = ("shows_finding", "realism")
    search_fields = ("case__patient_id", "expert__username")
    readonly_fields = ("case", "expert", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # experts review on their pages (or the API)

    def save_model(self, request: HttpRequest, obj: Review, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _decide_again(obj.case)

    def delete_model(self, request: HttpRequest, obj: Review) -> None:
        case = obj.case
        super().delete_model(request, obj)
        _decide_again(case)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        cases = {review.case for review in queryset.select_related("case__template_version")}
        super().delete_queryset(request, queryset)
        for case in cases:
            _decide_again(case)


@admin.register(ManualApproval)
class ManualApprovalAdmin(admin.ModelAdmin):
    list_display = ("case", "approved_by", "approved_at")
    readonly_fields = ("case", "approved_by", "approved_at")


@admin.register(CurationRule)
class CurationRuleAdmin(admin.ModelAdmin):
    """Saving a rule here applies it to the template's cases in the background, as the
    curation page does."""

    list_display = ("template", "min_reviews", "min_mean_realism", "finding_confirmed_by_all")

    def save_model(self, request: HttpRequest, obj: CurationRule, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        operation = obj.launch_apply(user=request.user)
        self.message_user(
            request,
            format_html(
                'The rule is being applied to its cases: <a href="{}">follow it</a>.',
                operation.get_absolute_url(),
            ),
        )


@admin.register(DifficultyDial)
class DifficultyDialAdmin(admin.ModelAdmin):
    list_display = (
        "template",
        "levels",
        "hardest_severity_scale",
        "easiest_truncation",
        "hardest_truncation",
    )


class ReviewLogInline(admin.TabularInline):
    model = ReviewLog
    fields = ("case", "shown_at", "answered_at", "score", "rating", "due_after")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ConceptCard)
class ConceptCardAdmin(admin.ModelAdmin):
    """A card's schedule is FSRS's, from its reviews: shown, not edited."""

    list_display = ("trainee", "template", "level", "due", "streak", "best_streak")
    list_filter = ("level", "template")
    search_fields = ("trainee__username", "template__title")
    readonly_fields = (
        "trainee",
        "template",
        "level",
        "state",
        "step",
        "stability",
        "difficulty",
        "due",
        "last_review",
        "streak",
        "best_streak",
        "created_at",
    )
    inlines = (ReviewLogInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
