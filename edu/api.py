"""REST API (``/edu/api/``): reviews, quizzes (authoring), attempts and answers (taking).

Trainees get only ``TraineeQuizSerializer`` and ``attempt_view``: neither carries a key
before it is revealed. Other trainees' attempts answer 404, as if they did not exist.
Experts start reference readings (``POST quizzes/<id>/reference/``) and answer them through
the same attempt endpoints.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.forms import Form
from django.shortcuts import get_object_or_404
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from edu import answering
from edu.forms import ItemMoveForm, KeySourceForm
from edu.models import Answer, Attempt, AttemptError, Question, Quiz, QuizItem, Review
from edu.roles import is_educator, is_expert
from edu.scoring import ResponseError
from edu.serializers import (
    AnswerInputSerializer,
    EducatorQuizSerializer,
    QuestionSerializer,
    QuizItemSerializer,
    ReviewSerializer,
    TraineeQuizSerializer,
    attempt_view,
)


def _as_drf_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


def _checked(quiz: Quiz) -> None:
    """Raise DRF's ValidationError (400) unless the quiz, as it would be saved, is valid."""
    try:
        quiz.full_clean(exclude=("created_by",))
    except DjangoValidationError as exc:
        raise _as_drf_error(exc) from exc


def _form_errors(form: Form) -> ValidationError:
    return ValidationError({field: list(errors) for field, errors in form.errors.items()})


class IsEducator(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return is_educator(request.user)


class IsExpert(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return is_expert(request.user)


class EducatorWrites(permissions.BasePermission):
    """Anyone signed in reads (the queryset narrows what); only educators write."""

    def has_permission(self, request: Request, view: object) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return request.user.is_authenticated
        return is_educator(request.user)


class ReviewViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """An expert's own reviews; POST creates or edits the review of ``case``."""

    serializer_class = ReviewSerializer
    permission_classes = [IsExpert]

    def get_queryset(self) -> QuerySet[Review]:
        return Review.objects.filter(expert=self.request.user)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = ReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        case = fields.pop("case")
        try:
            review = Review.submit(case=case, expert=request.user, **fields)
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        body = {**ReviewSerializer(review).data, "case_status": review.case.status}
        return Response(body, status=status.HTTP_201_CREATED)


class QuizViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = [EducatorWrites]

    def get_queryset(self) -> QuerySet[Quiz]:
        if is_educator(self.request.user):
            return Quiz.objects.prefetch_related("items__questions")
        return Quiz.objects.for_trainee(self.request.user)

    def get_serializer_class(self) -> type:
        return EducatorQuizSerializer if is_educator(self.request.user) else TraineeQuizSerializer

    def perform_create(self, serializer: EducatorQuizSerializer) -> None:
        _checked(Quiz(**serializer.validated_data, created_by=self.request.user))
        serializer.save(created_by=self.request.user)

    def perform_update(self, serializer: EducatorQuizSerializer) -> None:
        """The edited quiz is checked whole before anything is written, under the row lock
        that publishing takes (a quiz published meanwhile is checked as published)."""
        with transaction.atomic():
            quiz = Quiz.objects.select_for_update().get(pk=serializer.instance.pk)
            for name, value in serializer.validated_data.items():
                setattr(quiz, name, value)
            _checked(quiz)
            serializer.instance = quiz
            serializer.save()

    @action(detail=True, methods=["post"], permission_classes=[IsEducator])
    def items(self, request: Request, pk: str | None = None) -> Response:
        """Add a case to the quiz; a published quiz takes only approved cases."""
        quiz = self.get_object()
        data = QuizItemSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            item = QuizItem.objects.create(quiz=quiz, **data.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        return Response(QuizItemSerializer(item).data, status=status.HTTP_201_CREATED)

    @action(
        detail=True,
        methods=["post"],
        permission_classes=[IsEducator],
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
        try:
            quiz.move_item(int(item), form.target(current))
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        return Response(EducatorQuizSerializer(self.get_object()).data)  # items read afresh

    @action(
        detail=True,
        methods=["delete"],
        permission_classes=[IsEducator],
        url_path=r"items/(?P<item>[0-9]+)",
    )
    def remove_item(self, request: Request, pk: str | None = None, item: str = "") -> Response:
        """Remove an item of a draft quiz, with its questions."""
        quiz = self.get_object()
        if not quiz.items.filter(pk=int(item)).exists():
            raise NotFound("no such item in this quiz")
        try:
            quiz.remove_item(int(item))
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"], permission_classes=[IsEducator])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        quiz = self.get_object()
        try:
            quiz.publish()
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        return Response(EducatorQuizSerializer(quiz).data)

    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAuthenticated])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Start (or, in exam mode, resume) the caller's attempt."""
        quiz = get_object_or_404(Quiz.objects.for_trainee(request.user), pk=pk)
        try:
            attempt = Attempt.start(quiz=quiz, user=request.user)
        except AttemptError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(attempt_view(attempt), status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], permission_classes=[IsExpert])
    def reference(self, request: Request, pk: str | None = None) -> Response:
        """Start (or resume) the caller's reference reading: experts only."""
        quiz = get_object_or_404(Quiz.objects.for_reference_readers(), pk=pk)
        attempt = Attempt.start_reference(quiz=quiz, user=request.user)
        return Response(attempt_view(attempt), status=status.HTTP_201_CREATED)


class QuestionViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = QuestionSerializer
    permission_classes = [IsEducator]
    queryset = Question.objects.all()

    def perform_create(self, serializer: QuestionSerializer) -> None:
        question = Question(**serializer.validated_data)
        try:
            question.full_clean()
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
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


class AttemptViewSet(viewsets.GenericViewSet):
    """The caller's own attempts; anyone else's answer 404."""

    def get_queryset(self) -> QuerySet[Attempt]:
        return Attempt.objects.filter(user=self.request.user).select_related("quiz")

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


class GradeViewSet(viewsets.GenericViewSet):
    """Educators grade free-text answers: ``POST /edu/api/answers/<id>/grade/ {"score"}``."""

    permission_classes = [IsEducator]
    queryset = Answer.objects.filter(question__kind=Question.Kind.FREE_TEXT)

    @action(detail=True, methods=["post"])
    def grade(self, request: Request, pk: str | None = None) -> Response:
        answer = self.get_object()
        try:
            score = float(request.data.get("score"))
        except (TypeError, ValueError):
            score = -1.0
        if not 0.0 <= score <= 1.0:
            raise ValidationError({"score": "a number from 0 to 1"})
        Answer.objects.filter(pk=answer.pk).update(score=score, graded_by=request.user)
        return Response({"id": answer.pk, "score": score})
