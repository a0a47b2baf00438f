"""The API's serializers. A trainee's quiz carries no key; what a trainee sees of an attempt
is built in :mod:`edu.trainee_view`."""

from __future__ import annotations

from rest_framework import serializers

from cases.models import SyntheticPatient
from edu.models import Question, Quiz, QuizItem, Review
from gantry.permissions import users_with


class ReviewSerializer(serializers.ModelSerializer):
    # Cases only: a normal twin is reviewed with its case, never on its own.
    case = serializers.PrimaryKeyRelatedField(queryset=SyntheticPatient.objects.cases())

    class Meta:
        model = Review
        fields = (
            "id",
            "case",
            "expert",
            "realism",
            "shows_finding",
            "teaching_value",
            "comment",
            "updated_at",
        )
        read_only_fields = ("id", "expert", "updated_at")


class TraineeQuizSerializer(serializers.ModelSerializer):
    items = serializers.IntegerField(source="items.count", read_only=True)

    class Meta:
        model = Quiz
        fields = (
            "id",
            "title",
            "description",
            "mode",
            "time_limit_minutes",
            "allow_back",
            "unknown_case",
            "opens_at",
            "closes_at",
            "items",
        )


class QuestionSerializer(serializers.ModelSerializer):
    """The full question, keys included: for educators only."""

    class Meta:
        model = Question
        fields = (
            "id",
            "item",
            "order",
            "kind",
            "prompt",
            "options",
            "tolerance",
            "tolerance_mm",
            "points",
            "explanation",
            "key_source",
            "prior_study",
            "current_study",
        )
        read_only_fields = ("id",)


class QuizItemSerializer(serializers.ModelSerializer):
    questions = QuestionSerializer(many=True, read_only=True)
    case = serializers.PrimaryKeyRelatedField(queryset=SyntheticPatient.objects.cases())

    class Meta:
        model = QuizItem
        fields = ("id", "quiz", "case", "order", "questions")
        read_only_fields = ("id", "quiz")


class EducatorQuizSerializer(serializers.ModelSerializer):
    items = QuizItemSerializer(many=True, read_only=True)
    owner = serializers.IntegerField(source="created_by_id", read_only=True)
    co_authors = serializers.PrimaryKeyRelatedField(
        many=True, queryset=users_with("edu.manage_quiz"), required=False
    )

    class Meta:
        model = Quiz
        fields = (
            "id",
            "title",
            "description",
            "mode",
            "time_limit_minutes",
            "allow_back",
            "shuffle",
            "unknown_case",
            "normal_twin_rate",
            "cohort",
            "opens_at",
            "closes_at",
            "is_published",
            "invite_reference_readers",
            "owner",
            "co_authors",
            "items",
        )
        read_only_fields = ("id", "is_published", "items")


class AnswerInputSerializer(serializers.Serializer):
    question = serializers.IntegerField()
    response = serializers.JSONField()
