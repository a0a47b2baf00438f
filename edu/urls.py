from django.urls import include, path
from rest_framework.routers import DefaultRouter

from edu import api, practice_views, views

app_name = "edu"

router = DefaultRouter()
router.register("reviews", api.ReviewViewSet, basename="api-review")
router.register("quizzes", api.QuizViewSet, basename="api-quiz")
router.register("questions", api.QuestionViewSet, basename="api-question")
router.register("attempts", api.AttemptViewSet, basename="api-attempt")
router.register("answers", api.GradeViewSet, basename="api-answer")

urlpatterns = [
    path("reviews/", views.review_queue, name="review-queue"),
    path("reviews/cases/<int:pk>/", views.review_case, name="review-case"),
    path("curation/", views.curation, name="curation"),
    path("curation/templates/<int:pk>/", views.curation_rule_edit, name="curation-rule"),
    path(
        "curation/templates/<int:pk>/difficulty/",
        views.difficulty_dial_edit,
        name="difficulty-dial",
    ),
    path("curation/cases/<int:pk>/approve/", views.case_approve, name="case-approve"),
    path("quizzes/", views.quiz_list, name="quiz-list"),
    path("quizzes/new/", views.quiz_create, name="quiz-create"),
    path("quizzes/<int:pk>/", views.quiz_edit, name="quiz-edit"),
    path("quizzes/<int:pk>/items/", views.quiz_add_items, name="quiz-add-items"),
    path("quizzes/<int:pk>/items/<int:item>/move/", views.quiz_item_move, name="quiz-item-move"),
    path(
        "quizzes/<int:pk>/items/<int:item>/remove/",
        views.quiz_item_remove,
        name="quiz-item-remove",
    ),
    path("quizzes/<int:pk>/publish/", views.quiz_publish, name="quiz-publish"),
    path("quizzes/<int:pk>/new-version/", views.quiz_new_version, name="quiz-new-version"),
    path("quizzes/<int:pk>/results/", views.quiz_results, name="quiz-results"),
    path("quizzes/<int:pk>/results.csv", views.quiz_results_csv, name="quiz-results-csv"),
    path("quizzes/<int:pk>/items.csv", views.quiz_items_csv, name="quiz-items-csv"),
    path("quizzes/<int:pk>/start/", views.attempt_start, name="attempt-start"),
    path("quizzes/<int:pk>/reference/", views.reference_start, name="reference-start"),
    path("items/<int:pk>/questions/", views.question_add, name="question-add"),
    path("questions/<int:pk>/key-source/", views.question_key_source, name="question-key-source"),
    path("answers/<int:pk>/grade/", views.grade_answer, name="grade-answer"),
    path("attempts/<int:pk>/items/<int:position>/", views.attempt_item, name="attempt-item"),
    path(
        "attempts/<int:pk>/items/<int:item>/images/<int:index>/",
        views.attempt_image,
        name="attempt-image",
    ),
    path(
        "attempts/<int:pk>/items/<int:item>/images/<int:index>/contrasts/<int:contrast>/",
        views.attempt_image,
        name="attempt-contrast",
    ),
    path("attempts/<int:pk>/finish/", views.attempt_finish, name="attempt-finish"),
    path("attempts/<int:pk>/retry/", views.attempt_retry, name="attempt-retry"),
    path("attempts/<int:pk>/", views.attempt_summary, name="attempt-summary"),
    path("progress/", views.dashboard, name="dashboard"),
    path("practice/", practice_views.practice_home, name="practice"),
    path("practice/next/", practice_views.practice_due, name="practice-due"),
    path(
        "practice/templates/<int:pk>/start/", practice_views.practice_start, name="practice-start"
    ),
    path("practice/cards/<int:pk>/", practice_views.practice_card, name="practice-card"),
    path("practice/cards/<int:pk>/next/", practice_views.practice_next, name="practice-next"),
    path("practice/reviews/<int:pk>/", practice_views.practice_review, name="practice-review"),
    path(
        "practice/reviews/<int:pk>/images/<int:index>/",
        practice_views.practice_image,
        name="practice-image",
    ),
    path(
        "practice/reviews/<int:pk>/images/<int:index>/contrasts/<int:contrast>/",
        practice_views.practice_image,
        name="practice-contrast",
    ),
    path("api/", include(router.urls)),
]
