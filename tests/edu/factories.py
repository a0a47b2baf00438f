"""factory_boy factories for the edu app: quizzes, their items and questions."""

from __future__ import annotations

import factory

from edu.models import Question, Quiz, QuizItem
from tests.factories import UserFactory

OPTIONS = [
    {"text": "Glioma", "correct": True, "feedback": "Infiltrative mass."},
    {"text": "Abscess", "correct": False, "feedback": "Would show a rim."},
]


class QuizFactory(factory.django.DjangoModelFactory):
    """A draft practice quiz; pass ``cohort=`` and publish it once it has items."""

    class Meta:
        model = Quiz

    title = factory.Sequence(lambda n: f"Quiz {n}")
    mode = Quiz.Mode.PRACTICE
    created_by = factory.SubFactory(UserFactory, role="educator")


class QuizItemFactory(factory.django.DjangoModelFactory):
    """An item of ``quiz`` over ``case`` (a really generated case: make_cases), placed last."""

    class Meta:
        model = QuizItem

    quiz = factory.SubFactory(QuizFactory)
    order = factory.LazyAttribute(lambda o: o.quiz.items.count())


class QuestionFactory(factory.django.DjangoModelFactory):
    """A question of ``item``; single best answer unless ``kind=`` says otherwise."""

    class Meta:
        model = Question

    kind = Question.Kind.SINGLE_BEST
    prompt = factory.LazyAttribute(lambda o: f"{o.kind}?")
    options = factory.LazyAttribute(
        lambda o: OPTIONS if o.kind == Question.Kind.SINGLE_BEST else []
    )
    order = factory.LazyAttribute(lambda o: o.item.questions.count())
