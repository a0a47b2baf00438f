"""Curation by reviews, the publish rule, and scoring real answers against real masks."""

import pytest
from django.core.exceptions import ValidationError

from cases.models import SyntheticPatient
from edu import answering
from edu.models import (
    Answer,
    Attempt,
    AttemptError,
    CurationRule,
    Question,
    Quiz,
    QuizItem,
    Review,
)
from tests.edu.conftest import build_quiz, perfect_responses
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_reviews_move_a_case_through_the_curation_rule(make_cases):
    case = make_cases(1, status="draft")[0]
    first, second = UserFactory(role="expert"), UserFactory(role="expert")
    Review.submit(case=case, expert=first, realism=4, shows_finding="yes", teaching_value=3)
    case.refresh_from_db()
    assert case.status == "in_review"
    Review.submit(case=case, expert=second, realism=2, shows_finding="yes", teaching_value=3)
    case.refresh_from_db()
    assert case.status == "rejected"  # mean realism 3.0 < 3.5
    # The second expert edits the review: still one review each, and the case is approved.
    Review.submit(case=case, expert=second, realism=4, shows_finding="yes", teaching_value=4)
    case.refresh_from_db()
    assert case.status == "approved"
    assert case.reviews.count() == 2


def test_an_educator_rule_per_template(make_cases):
    case = make_cases(1, status="draft")[0]
    CurationRule.objects.create(
        template=case.template_version.template,
        min_reviews=1,
        min_mean_realism=3,
        finding_confirmed_by_all=False,
    )
    Review.submit(
        case=case,
        expert=UserFactory(role="expert"),
        realism=3,
        shows_finding="unsure",
        teaching_value=2,
    )
    case.refresh_from_db()
    assert case.status == "approved"


def test_a_review_out_of_range_is_refused(make_cases):
    case = make_cases(1, status="draft")[0]
    with pytest.raises(ValidationError):
        Review.submit(
            case=case,
            expert=UserFactory(role="expert"),
            realism=6,
            shows_finding="yes",
            teaching_value=3,
        )
    assert not Review.objects.exists()


def test_only_approved_cases_enter_a_published_quiz(educator, cohort, make_cases):
    approved, draft = make_cases(1)[0], make_cases(1, status="draft")[0]
    quiz = build_quiz(educator, cohort, approved)
    with pytest.raises(ValidationError, match="frozen"):
        QuizItem.objects.create(quiz=quiz, case=draft)
    unpublished = build_quiz(educator, cohort, draft, publish=False)
    with pytest.raises(ValidationError, match="not approved"):
        unpublished.publish()
    assert not Quiz.objects.get(pk=unpublished.pk).is_published


def test_a_published_quiz_is_frozen_and_edited_as_a_new_version(quiz, trainee, make_cases):
    attempt = Attempt.start(quiz=quiz, user=trainee)
    item = attempt.items()[0]
    for question, response in perfect_responses(attempt, item).items():
        answering.submit(attempt, question, response)
    attempt.finish()
    before = attempt.score()
    with pytest.raises(ValidationError, match="frozen"):
        Question(item=item, kind="free_text", prompt="More?").save()

    draft = quiz.new_version()
    assert quiz.new_version() == draft  # one draft at a time
    assert (draft.version, draft.is_published, draft.previous_version) == (2, False, quiz)
    assert [q.kind for q in draft.items.get().questions.all()] == [
        q.kind for q in item.questions.all()
    ]
    QuizItem.objects.create(quiz=draft, case=make_cases(1)[0], order=1)
    new_item = draft.items.get(order=1)
    Question.objects.create(item=new_item, kind="free_text", prompt="Findings?")
    assert list(Quiz.objects.for_trainee(trainee)) == [quiz]  # until the draft is published
    draft.publish()

    assert list(Quiz.objects.for_trainee(trainee)) == [draft]
    assert not quiz.is_open()
    with pytest.raises(AttemptError, match="not open"):
        Attempt.start(quiz=quiz, user=trainee)
    assert Attempt.objects.get(pk=attempt.pk).score() == before
    assert len(Attempt.start(quiz=draft, user=trainee).items()) == 2


def test_perfect_answers_score_full_marks_and_free_text_waits(quiz, trainee):
    attempt = Attempt.start(quiz=quiz, user=trainee)
    item = attempt.items()[0]
    for question, response in perfect_responses(attempt, item).items():
        _answer, changed = answering.submit(attempt, question, response)
        assert changed
    score = attempt.score()
    assert score == {"earned": 4.0, "possible": 4.0, "percent": 100.0, "pending": 1}
    localisation = Answer.objects.get(question__kind="localisation")
    assert localisation.detail["hit"] is True
    assert localisation.detail["distance_mm"] == 0.0


def test_a_repeated_submit_does_not_double_count(quiz, trainee):
    attempt = Attempt.start(quiz=quiz, user=trainee)
    question = attempt.items()[0].questions.get(kind="single_best")
    answering.submit(attempt, question, {"option": 1})
    _, changed = answering.submit(attempt, question, {"option": 0})
    assert not changed  # practice: the first answer is final
    assert Answer.objects.filter(attempt=attempt).count() == 1
    assert Answer.objects.get(attempt=attempt).score == 0.0


def test_an_exam_allows_changes_until_finished_and_then_refuses(educator, cohort, case, trainee):
    quiz = build_quiz(educator, cohort, case, mode=Quiz.Mode.EXAM, allow_back=True)
    attempt = Attempt.start(quiz=quiz, user=trainee)
    assert Attempt.start(quiz=quiz, user=trainee) == attempt  # one exam attempt each
    question = attempt.items()[0].questions.get(kind="single_best")
    answering.submit(attempt, question, {"option": 1})
    answering.submit(attempt, question, {"option": 0})
    assert Answer.objects.get(attempt=attempt).score == 1.0
    attempt.finish()
    with pytest.raises(ValueError, match="finished"):
        answering.submit(attempt, question, {"option": 2})


def test_a_retry_holds_only_the_wrong_items(educator, cohort, make_cases, trainee):
    right, wrong = make_cases(2)
    quiz = build_quiz(educator, cohort, right, publish=False)
    QuizItem.objects.create(quiz=quiz, case=wrong, order=1)
    for question in quiz.items.get(case=right).questions.all():
        question.pk = None
        question.item = quiz.items.get(case=wrong)
        question.save()
    quiz.publish()
    attempt = Attempt.start(quiz=quiz, user=trainee)
    for item in attempt.items():
        responses = perfect_responses(attempt, item)
        for question, response in responses.items():
            if item.case == wrong and question.kind == "severity":
                response = {"value": response["value"] + 0.5}
            answering.submit(attempt, question, response)
    attempt.finish()
    retry = Attempt.start(quiz=quiz, user=trainee, retry_of=attempt)
    assert retry.item_ids == [quiz.items.get(case=wrong).pk]


def test_trainees_see_a_case_only_after_its_answer_is_revealed(quiz, case, trainee, other_trainee):
    visible = SyntheticPatient.objects.visible_to
    assert not visible(trainee).exists()
    attempt = Attempt.start(quiz=quiz, user=trainee)
    assert not visible(trainee).exists()
    question = attempt.items()[0].questions.get(kind="single_best")
    answering.submit(attempt, question, {"option": 0})
    assert not visible(trainee).exists()  # the item's other questions are still open
    attempt.finish()
    assert list(visible(trainee)) == [case]
    assert not visible(other_trainee).exists()


def test_no_answer_is_stored_after_its_attempt_finished(quiz, trainee):
    """The request that answers read the attempt before another request finished it: the
    database, not that stale copy, decides."""
    attempt = Attempt.start(quiz=quiz, user=trainee)
    question = attempt.items()[0].questions.get(kind="single_best")
    Attempt.objects.get(pk=attempt.pk).finish()  # the finish request, in between
    with pytest.raises(ValueError, match="finished"):
        answering.submit(attempt, question, {"option": 0})
    assert not Answer.objects.filter(attempt=attempt).exists()
    assert attempt.is_finished


@pytest.mark.parametrize("masks", [True, False])
def test_a_localisation_question_needs_a_generator_that_gives_masks(scripted_model, masks):
    from cases.generation import worker
    from edu.models import Question
    from tests.factories import GenerationJobFactory, TemplateVersionFactory

    version = TemplateVersionFactory(generator=scripted_model(masks=masks), finding="nodule")
    job = GenerationJobFactory(template_version=version, n_cases=1)
    worker.run_generation_job(job_pk=job.pk)
    quiz = Quiz.objects.create(title="Disks", created_by=UserFactory(role="educator"))
    item = QuizItem.objects.create(quiz=quiz, case=job.cases.get(), order=0)
    question = Question(item=item, kind=Question.Kind.LOCALISATION, prompt="Where?")
    if masks:
        question.full_clean()
    else:
        with pytest.raises(ValidationError, match="has no segmenter, so its cases carry no"):
            question.full_clean()
