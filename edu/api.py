"""REST API (``/edu/api/``): reviews, quizzes (authoring), attempts and answers (taking).

Trainees get only ``TraineeQuizSerializer`` and ``attempt_view``: neither carries a key
before it is revealed. Other trainees' attempts answer 404, as if they did not exist.
Experts start reference readings (``POST quizzes/<id>/reference/``) and answer them through
the same attempt endpoints.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.forms import Form
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from edu import answering
from edu.forms import ItemMoveForm, KeySourceForm
from edu.models import Answer, Attempt, AttemptError, Question, Quiz, QuizItem, Review
from edu.scoring import ResponseError
from edu.serializers import (
    AnswerInputSerializer,
    EducatorQuizSerializer,
    QuestionSerializer,
    QuizItemSerializer,
    ReviewSerializer,
    TraineeQuizSerializer,
)
from edu.trainee_view import attempt_view
from gantry.permissions import ObjectRules, Perms


def _checked(quiz: Quiz) -> None:
    """Raise a ValidationError (400, see gantry.api) unless the quiz, as it would be saved,
    is valid."""
    quiz.full_clean(exclude=("created_by", "co_authors"))


def _fields(validated: dict) -> dict:
    """The quiz's own fields of ``validated`` (co-authors are a relation, saved after)."""
    return {name: value for name, value in validated.items() if name != "co_authors"}


def _form_errors(form: Form) -> ValidationError:
    return ValidationError({field: list(errors) for field, errors in form.errors.items()})


class ReviewViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """An expert's own reviews; POST creates or edits the review of ``case``."""

    queryset = Review.objects.none()  # the model, for the schema; see get_queryset
    serializer_class = ReviewSerializer
    permission_classes = [Perms]
    required_perms = {"*": ["edu.review_case"]}

    def get_queryset(self) -> QuerySet[Review]:
        return Review.objects.filter(expert=self.request.user)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = ReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        case = fields.pop("case")
        review = Review.submit(case=case, expert=request.user, **fields)
        body = {**ReviewSerializer(review).data, "case_status": review.case.status}
        return Response(body, status=status.HTTP_201_CREATED)


class QuizViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Educators see and edit the quizzes they own or co-author; trainees read the published
    quizzes of their cohorts; experts start reference readings."""

    permission_classes = [Perms, ObjectRules]
    # Reading needs a login only: the queryset narrows what each user sees.
    required_perms = {
        "create": ["edu.manage_quiz"],
        "update": ["edu.manage_quiz"],
        "partial_update": ["edu.manage_quiz"],
        "items": ["edu.manage_quiz"],
        "move_item": ["edu.manage_quiz"],
        "remove_item": ["edu.manage_quiz"],
        "publish": ["edu.manage_quiz"],
        "reference": ["edu.read_reference"],
    }
    # For educators; trainees read only their cohorts' published quizzes (the queryset).
    educator_rules = {
        action: "edu.edit_quiz"
        for action in (
            "retrieve",
            "update",
            "partial_update",
            "items",
            "move_item",
            "remove_item",
            "publish",
        )
    }

    @property
    def object_rules(self) -> dict[str, str]:
        return self.educator_rules if self._authoring() else {}

    def _authoring(self) -> bool:
        return self.request.user.has_perm("edu.manage_quiz")

    def get_queryset(self) -> QuerySet[Quiz]:
        if not self._authoring():
            return Quiz.objects.for_trainee(self.request.user)
        # An educator lists their own quizzes; another's answers 403 (edu.edit_quiz).
        quizzes = (
            Quiz.objects.authored_by(self.request.user) if self.action == "list" else Quiz.objects
        )
        return quizzes.prefetch_related("items__questions", "co_authors")

    def get_serializer_class(self) -> type:
        return EducatorQuizSerializer if self._authoring() else TraineeQuizSerializer

    def perform_create(self, serializer: EducatorQuizSerializer) -> None:
        _checked(Quiz(**_fields(serializer.validated_data), created_by=self.request.user))
        serializer.save(created_by=self.request.user)

    def perform_update(self, serializer: EducatorQuizSerializer) -> None:
        """The edited quiz is checked whole before anything is written, under the row lock
        that publishing takes (a quiz published meanwhile is checked as published)."""
        with transaction.atomic():
            quiz = Quiz.objects.select_for_update().get(pk=serializer.instance.pk)
            for name, value in _fields(serializer.validated_data).items():
                setattr(quiz, name, value)
            _checked(quiz)
            serializer.instance = quiz
            serializer.save()

    @action(detail=True, methods=["post"])
    def items(self, request: Request, pk: str | None = None) -> Response:
        """Add a case to the quiz; a published quiz takes only approved cases."""
        quiz = self.get_object()
        data = QuizItemSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = QuizItem.objects.create(quiz=quiz, **data.validated_data)
        return Response(QuizItemSerializer(item).data, status=status.HTTP_201_CREATED)

    @action(
        detail=True,
        methods=["post"],
        url_path=r"items/(?P<item>[0-9]+)/move",
    )
    def move_item(self, request: Request, pk: str | None = None, item: str = "") -> Response:
        """Move an item of a draft quiz: ``{"position": n}`` (1 = first) or
        ``{"direction": "up" | "down"}``."""
        quiz = self.get_object()
        try:
            current = quiz.item_position(int(item))
        except QuizItem.DoesNotExist as exc:
            raise NotFound(str(exc)) from exc
        form = ItemMoveForm(request.data)
        if not form.is_valid():
            raise _form_errors(form)
        quiz.move_item(int(item), form.target(current))
        return Response(EducatorQuizSerializer(self.get_object()).data)  # items read afresh

    @action(
        detail=True,
        methods=["delete"],
        url_path=r"items/(?P<item>[0-9]+)",
    )
    def remove_item(self, request: Request, pk: str | None = None, item: str = "") -> Response:
        """Remove an item of a draft quiz, with its questions."""
        quiz = self.get_object()
        if not quiz.items.filter(pk=int(item)).exists():
            raise NotFound("no such item in this quiz")
        quiz.remove_item(int(item))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        quiz = self.get_object()
        quiz.publish()
        return Response(EducatorQuizSerializer(quiz).data)

    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Start (or, in exam mode, resume) the caller's attempt."""
        quiz = get_object_or_404(Quiz.objects.for_trainee(request.user), pk=pk)
        try:
            attempt = Attempt.start(quiz=quiz, user=request.user)
        except AttemptError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(attempt_view(attempt), status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def reference(self, request: Request, pk: str | None = None) -> Response:
        """Start (or resume) the caller's reference reading: experts only."""
        quiz = get_object_or_404(Quiz.objects.for_reference_readers(), pk=pk)
        attempt = Attempt.start_reference(quiz=quiz, user=request.user)
        return Response(attempt_view(attempt), status=status.HTTP_201_CREATED)


class QuestionViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Questions of the quizzes the caller owns or co-authors (``edu.edit_quiz``)."""

    serializer_class = QuestionSerializer
    permission_classes = [Perms, ObjectRules]
    required_perms = {"*": ["edu.manage_quiz"]}
    object_rules = {"key_source": "edu.edit_quiz"}
    queryset = Question.objects.select_related("item__quiz")

    def perform_create(self, serializer: QuestionSerializer) -> None:
        if not self.request.user.has_perm("edu.edit_quiz", serializer.validated_data["item"]):
            raise PermissionDenied("only the quiz's owner and co-authors may add questions")
        question = Question(**serializer.validated_data)
        question.full_clean()
        question.save()
        serializer.instance = question

    @action(detail=True, methods=["post"], url_path="key-source")
    def key_source(self, request: Request, pk: str | None = None) -> Response:
        """``{"key_source": "built_in" | "reference"}``; the trainees' answers are scored
        again against it."""
        question = self.get_object()
        form = KeySourceForm(request.data, instance=question)
        if not form.is_valid():  # the model's clean refuses kinds without a reference standard
            raise _form_errors(form)
        question.save(update_fields=["key_source"])
        count = answering.rescore(question)
        return Response({**QuestionSerializer(question).data, "answers_scored_again": count})


# What the attempt endpoints answer: ``attempt_view``, the trainee's view of an attempt (its
# items, their answers, and each key once revealed to the trainee).
ATTEMPT = OpenApiResponse(OpenApiTypes.OBJECT, description="the trainee's view of the attempt")


@extend_schema_view(
    list=extend_schema(
        operation_id="edu_api_attempts_list", responses={200: OpenApiTypes.OBJECT}, request=None
    ),
    retrieve=extend_schema(responses={200: ATTEMPT}, request=None),
    answers=extend_schema(request=AnswerInputSerializer, responses={200: ATTEMPT, 201: ATTEMPT}),
    finish=extend_schema(request=None, responses={200: ATTEMPT}),
)
class AttemptViewSet(viewsets.GenericViewSet):
    """The caller's own attempts; anyone else's answer 404 (``edu.take_attempt``, which the
    queryset mirrors)."""

    queryset = Attempt.objects.none()  # the model, for the schema; see get_queryset
    serializer_class = AnswerInputSerializer

    def get_queryset(self) -> QuerySet[Attempt]:
        return Attempt.objects.filter(user=self.request.user).select_related("quiz")

    def get_object(self) -> Attempt:
        attempt = super().get_object()
        if not self.request.user.has_perm("edu.take_attempt", attempt):
            raise NotFound("no such attempt")
        return attempt

    def _attempt(self) -> Attempt:
        attempt = self.get_object()
        attempt.expire_if_due()
        return attempt

    def list(self, request: Request) -> Response:
        return Response([attempt_view(a) for a in self.get_queryset()[:50]])

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(attempt_view(self._attempt()))

    @action(detail=True, methods=["post"])
    def answers(self, request: Request, pk: str | None = None) -> Response:
        """Submit ``{"question": id, "response": {...}}``; a repeat changes nothing."""
        attempt = self._attempt()
        data = AnswerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        question = Question.objects.filter(pk=data.validated_data["question"]).first()
        if question is None:
            raise ValidationError({"question": "no such question"})
        try:
            _, changed = answering.submit(attempt, question, data.validated_data["response"])
        except (AttemptError, ResponseError) as exc:
            raise ValidationError(str(exc)) from exc
        code = status.HTTP_201_CREATED if changed else status.HTTP_200_OK
        return Response(attempt_view(attempt), status=code)

    @action(detail=True, methods=["post"])
    def finish(self, request: Request, pk: str | None = None) -> Response:
        attempt = self._attempt()
        attempt.finish()
        return Response(attempt_view(attempt))


class GradeSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    score = serializers.FloatField(min_value=0.0, max_value=1.0)


class GradeViewSet(viewsets.GenericViewSet):
    """Educators grade free-text answers: ``POST /edu/api/answers/<id>/grade/ {"score"}``."""

    serializer_class = GradeSerializer

    permission_classes = [Perms, ObjectRules]
    required_perms = {"*": ["edu.manage_quiz"]}
    object_rules = {"grade": "edu.edit_quiz"}
    queryset = Answer.objects.filter(question__kind=Question.Kind.FREE_TEXT).select_related(
        "attempt__quiz"
    )

    @action(detail=True, methods=["post"])
    def grade(self, request: Request, pk: str | None = None) -> Response:
        answer = self.get_object()
        try:
            score = float(request.data.get("score"))
        except (TypeError, ValueError):
            score = -1.0
        if not 0.0 <= score <= 1.0:
            raise ValidationError({"score": "a number from 0 to 1"})
        answer.grade(score, by=request.user)
        return Response({"id": answer.pk, "score": score})
