"""Spaced practice on fresh variants: a due concept gets a case its trainee never saw, from
the approved pool or generated at the card's level when the pool has none left; answers
reschedule the card as the library's own FSRS scheduler would, and move the level."""

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pydicom
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from fsrs import Card, Rating, Scheduler

from cases.generation import worker
from cases.models import GenerationJob, Instance, SyntheticPatient
from edu import keys, practice
from edu.models import ConceptCard, DifficultyDial, PracticeGeneration, ReviewLog
from tests.edu.conftest import build_quiz

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def right_responses(review):
    """The right answer to each question of the review, read from the key (a test oracle)."""
    responses = {}
    for question in practice.questions(review):
        if question["kind"] == "single_best":
            correct = next(i for i, o in enumerate(question["options"]) if o["correct"])
            responses["finding"] = {"option": correct}
        else:
            images = keys.images_of_case(review.case)
            index, lesion = next(
                (i, lesion)
                for i, image in enumerate(images)
                if (lesion := keys.lesion_of(image)) is not None and lesion.mask.any()
            )
            rows, cols = np.nonzero(lesion.mask)
            responses["lesion"] = {"image": index, "x": cols[0] + 0.5, "y": rows[0] + 0.5}
    return responses


def wrong_responses(review):
    responses = right_responses(review)
    question = practice.questions(review)[0]
    responses["finding"] = {
        "option": next(i for i, o in enumerate(question["options"]) if not o["correct"])
    }
    responses["lesion"] = {"image": 0, "x": 0.5, "y": 0.5}  # a corner: no lesion there
    return responses


@pytest.fixture
def pool(make_cases):
    return make_cases(3)


@pytest.fixture
def card(trainee, pool):
    return ConceptCard.open(trainee=trainee, template=pool[0].template_version.template)


def _make_due(card):
    ConceptCard.objects.filter(pk=card.pk).update(due=T0 - timedelta(days=1000))
    card.refresh_from_db()


def test_each_review_is_a_case_never_seen_until_the_pool_runs_out(card, pool):
    drawn = []
    for _ in pool:
        review = practice.draw(card).review
        assert practice.draw(card).review == review  # reloading keeps the open review
        drawn.append(review.case_id)
        practice.answer(review, right_responses(review))
    assert sorted(drawn) == sorted(c.pk for c in pool)
    assert practice.unseen_cases(card) == []
    fallback = practice.draw(card)
    assert fallback.review is None
    assert fallback.job is not None


def test_cases_of_the_trainees_quizzes_rejected_and_hidden_ones_are_not_drawn(
    card, pool, educator, cohort, make_cases
):
    build_quiz(educator, cohort, pool[0])
    SyntheticPatient.objects.filter(pk=pool[1].pk).update(status="rejected")
    assert [c.pk for c in practice.unseen_cases(card)] == [pool[2].pk]


def test_another_trainee_still_gets_a_case_one_trainee_has_seen(card, pool, other_trainee):
    review = practice.draw(card).review
    practice.answer(review, right_responses(review))
    theirs = ConceptCard.open(trainee=other_trainee, template=card.template)
    assert review.case in practice.unseen_cases(theirs)


def test_an_empty_pool_generates_fresh_cases_at_the_cards_level(card, trainee):
    DifficultyDial.objects.create(template=card.template, levels=3, hardest_severity_scale=0.5)
    hard = ConceptCard.open(trainee=trainee, template=card.template, level=3)
    assert practice.unseen_cases(hard) == []  # the pool's cases are at full severity
    drawn = practice.draw(hard)
    job = drawn.job
    assert drawn.review is None
    assert (job.severity_scale, job.truncation, job.n_cases) == (0.5, 1.0, 4)
    assert PracticeGeneration.objects.get(job=job).level == 3
    assert practice.draw(hard).job == job  # one job at a time per concept
    assert GenerationJob.objects.count() == 2  # the pool's and this one

    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.SUCCEEDED, job.error
    severities = sorted(
        {s for c in job.cases.all() for s in c.studies.values_list("severity", flat=True)}
    )
    assert severities == pytest.approx([0.1, 0.25, 0.4])  # the template's 0.2 -> 0.8, halved
    assert set(
        Instance.objects.filter(series__study__patient__job=job)
        .exclude(series__modality="SEG")
        .values_list("truncation", flat=True)
    ) == {1.0}
    review = practice.draw(hard).review
    assert review.case.job == job  # not reviewed by experts yet, but made for practice
    assert review.case.status == SyntheticPatient.Status.DRAFT
    assert practice.unseen_cases(card) != []  # level 1 still draws the pool, not these


def test_a_failed_generation_is_shown_and_a_new_one_can_start(card, login, trainee):
    for review_case in list(practice.unseen_cases(card)):
        ReviewLog.objects.create(
            card=card, trainee=trainee, case=review_case, seed=1, answered_at=T0
        )
    job = practice.draw(card).job
    job.finish(error="the generator checkpoint is missing")
    page = login(trainee).get(f"/edu/practice/cards/{card.pk}/")
    assert "the generator checkpoint is missing" in page.content.decode()
    assert practice.draw(card).job != job


def test_the_schedule_is_the_librarys_for_the_ratings_the_answers_earn(card, make_cases):
    make_cases(1, template=card.template)  # a fourth case of the same concept
    library, expected = Scheduler(enable_fuzzing=False), Card(due=T0)
    at = T0
    for answers, seconds, rating in [
        (right_responses, 8, Rating.Easy),
        (wrong_responses, 40, Rating.Again),
        (right_responses, 90, Rating.Good),
        (right_responses, 5, Rating.Easy),
    ]:
        review = practice.draw(card, now=at).review
        answered = practice.answer(review, answers(review), now=at + timedelta(seconds=seconds))
        expected, _ = library.review_card(expected, rating, at + timedelta(seconds=seconds))
        card.refresh_from_db()
        assert answered.rating == rating
        assert card.due == expected.due == answered.due_after
        assert card.stability == pytest.approx(expected.stability)
        assert card.difficulty == pytest.approx(expected.difficulty)
        at = expected.due


def test_a_streak_opens_the_next_level_once(card, trainee, pool):
    for _ in range(2):
        _make_due(card)
        review = practice.draw(card).review
        practice.answer(review, right_responses(review))
    card.refresh_from_db()
    assert (card.streak, card.best_streak) == (2, 2)
    harder = ConceptCard.objects.get(trainee=trainee, template=card.template, level=2)
    assert harder.is_due()
    later = harder.due + timedelta(days=30)
    ConceptCard.objects.filter(pk=harder.pk).update(due=later)
    _make_due(card)
    review = practice.draw(card).review
    practice.answer(review, right_responses(review))
    harder.refresh_from_db()
    assert harder.due == later  # a third right answer below does not hurry it


def test_a_wrong_answer_brings_the_level_below_back(card, trainee):
    # Severity alike on both levels: the pool's cases (truncation 0.8) are level 2.
    DifficultyDial.objects.create(
        template=card.template,
        levels=2,
        hardest_severity_scale=1.0,
        easiest_truncation=0.6,
        hardest_truncation=0.8,
    )
    later = timezone.now() + timedelta(days=30)
    ConceptCard.objects.filter(pk=card.pk).update(due=later)
    harder = ConceptCard.open(trainee=trainee, template=card.template, level=2)
    review = practice.draw(harder).review
    practice.answer(review, right_responses(review))
    card.refresh_from_db()
    assert card.due == later
    _make_due(harder)
    review = practice.draw(harder).review
    answered = practice.answer(review, wrong_responses(review))
    card.refresh_from_db()
    harder.refresh_from_db()
    assert card.is_due()
    assert (harder.streak, harder.best_streak, answered.rating) == (0, 1, Rating.Again)


def test_a_second_answer_is_refused_and_changes_nothing(card):
    review = practice.draw(card).review
    practice.answer(review, right_responses(review))
    card.refresh_from_db()
    due = card.due
    with pytest.raises(practice.PracticeError, match="answered already"):
        practice.answer(review, wrong_responses(review))
    card.refresh_from_db()
    assert card.due == due
    assert card.streak == 1


def test_a_malformed_answer_is_refused_before_anything_is_stored(card):
    review = practice.draw(card).review
    with pytest.raises(practice.PracticeError, match="What is the finding"):
        practice.answer(review, {"finding": {"option": 99}, "lesion": {}})
    review.refresh_from_db()
    assert not review.is_answered
    assert review.card.last_review is None


# --- pages --------------------------------------------------------------------------------------


def test_a_trainee_practises_a_due_concept_through_the_pages(login, trainee, pool):
    client = login(trainee)
    template = pool[0].template_version.template
    page = client.get("/edu/practice/")
    assert page.status_code == 200
    assert template.title in page.content.decode()
    client.post(f"/edu/practice/templates/{template.pk}/start/")
    assert "1 concept due" in client.get("/edu/practice/").content.decode()
    card = ConceptCard.objects.get(trainee=trainee)
    response = client.post("/edu/practice/next/")
    review = ReviewLog.objects.get(card=card)
    assert response.url == f"/edu/practice/reviews/{review.pk}/"
    page = client.get(response.url).content.decode()
    assert "What is the finding?" in page
    assert template.title not in page
    assert 'id="case-diagnosis"' not in page

    bad = client.post(response.url, {"qfinding_option": ""})
    assert bad.status_code == 400
    assert "What is the finding?" in bad.content.decode()
    right = right_responses(review)
    form = {
        "qfinding_option": right["finding"]["option"],
        **{f"qlesion_{k}": v for k, v in right["lesion"].items()},
    }
    assert client.post(response.url, form).status_code == 302
    page = client.get(response.url).content.decode()
    review.refresh_from_db()
    assert review.score == 1.0
    assert 'id="practice-result"' in page
    assert page.count('class="feedback right"') == 2
    assert 'id="case-diagnosis"' in page
    assert template.title in page
    assert client.post("/edu/practice/next/").url == "/edu/practice/"  # nothing due now
    home = client.get("/edu/practice/").content.decode()
    assert 'id="nothing-due"' in home
    assert "1 (1)" in home
    image = client.get(f"/edu/practice/reviews/{review.pk}/images/0/")
    assert image.status_code == 200
    blinded = pydicom.dcmread(io.BytesIO(image.content))
    stored = review.case.studies.first().series.first().instances.first()
    assert blinded.SOPInstanceUID != stored.sop_instance_uid
    # The answered case is now the trainee's to see on its own page.
    assert client.get(f"/cases/{review.case.pk}/").status_code == 200


def test_practice_belongs_to_its_trainee(login, client, card, other_trainee, educator):
    review = practice.draw(card).review
    urls = [
        f"/edu/practice/reviews/{review.pk}/",
        f"/edu/practice/reviews/{review.pk}/images/0/",
        f"/edu/practice/cards/{card.pk}/",
    ]
    assert client.get("/edu/practice/").status_code == 302
    login(other_trainee)
    assert [client.get(url).status_code for url in urls] == [404, 404, 404]
    assert client.post(f"/edu/practice/cards/{card.pk}/next/").status_code == 404
    login(educator)
    assert client.get("/edu/practice/").status_code == 403


def test_educators_set_a_templates_dial_on_the_curation_page(login, educator, trainee, card):
    url = f"/edu/curation/templates/{card.template.pk}/difficulty/"
    fields = {
        "levels": "3",
        "hardest_severity_scale": "0.5",
        "easiest_truncation": "0.7",
        "hardest_truncation": "0.9",
    }
    client = login(educator)
    bad = client.post(
        url,
        {f"d{card.template.pk}-{k}": v for k, v in fields.items()}
        | {f"d{card.template.pk}-hardest_severity_scale": "1.5"},
    )
    assert bad.status_code == 400
    assert "Not saved" in bad.content.decode()
    assert not DifficultyDial.objects.exists()
    assert (
        client.post(url, {f"d{card.template.pk}-{k}": v for k, v in fields.items()}).status_code
        == 302
    )
    dial = DifficultyDial.for_template(card.template).as_dial()
    assert (dial.levels, dial.severity_scale(3), dial.truncation(1)) == (3, 0.5, 0.7)
    login(trainee)
    assert client.post(url, fields).status_code == 403


def test_a_job_refuses_a_dial_out_of_range(card):
    version = card.template.current
    with pytest.raises(ValidationError, match="severity_scale"):
        version.launch_job(requested_by=card.trainee, n_cases=1, severity_scale=0.0)
    with pytest.raises(ValidationError, match="truncation"):
        version.launch_job(requested_by=card.trainee, n_cases=1, truncation=1.5)
    assert GenerationJob.objects.count() == 1  # the pool's


def test_cards_their_reviews_and_dials_have_admin_pages(client, card):
    from django.contrib.auth.models import User

    review = practice.draw(card).review
    practice.answer(review, right_responses(review))
    dial = DifficultyDial.objects.create(template=card.template)
    client.force_login(User.objects.create_superuser("root", password="x"))
    for url in (
        "/admin/edu/conceptcard/",
        f"/admin/edu/conceptcard/{card.pk}/change/",
        f"/admin/edu/difficultydial/{dial.pk}/change/",
    ):
        assert client.get(url).status_code == 200, url
    page = client.get(f"/admin/edu/conceptcard/{card.pk}/change/").content.decode()
    assert review.case.patient_id in page
    assert 'name="due"' not in page  # the schedule is FSRS's, not edited
