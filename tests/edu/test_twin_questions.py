"""Questions on normal twins and priors: "which of these is abnormal?", "what changed since
the prior?" and "is this normal?" with twins mixed in at the quiz's rate; their scoring, their
keys read from the case, and their blinding."""

import io
import math

import pydicom
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from cases.models import LesionGroundTruth
from edu import answering, keys, scoring
from edu.models import Attempt, Question, Quiz, QuizItem


def one_question_quiz(educator, cohort, case, kind, *, rate=0.5, **fields):
    quiz = Quiz.objects.create(
        title=f"Twins: {kind}",
        cohort=cohort,
        created_by=educator,
        normal_twin_rate=rate,
        shuffle=False,
    )
    item = QuizItem.objects.create(quiz=quiz, case=case)
    question = Question(item=item, kind=kind, prompt=f"{kind}?", **fields)
    question.full_clean()
    question.save()
    quiz.publish()
    return quiz, item, question


# ---- scoring: pure functions ------------------------------------------------------------------


def test_which_abnormal_scores_the_index_of_the_case():
    assert scoring.score_which_abnormal(1, 2, {"image": 1}).score == 1.0
    wrong = scoring.score_which_abnormal(1, 2, {"image": 0})
    assert (wrong.score, wrong.detail) == (0.0, {"image": 0, "abnormal": 1})
    for bad in ({"image": 2}, {"image": True}, {"image": "1"}, {}):
        with pytest.raises(scoring.ResponseError):
            scoring.score_which_abnormal(1, 2, bad)


@pytest.mark.parametrize(
    ("prior", "current", "change"),
    [
        (10.0, 12.0, "grew"),  # +20 %: progression by RECIST 1.1
        (10.0, 11.9, "unchanged"),
        (10.0, 7.0, "shrank"),  # -30 %: partial response
        (10.0, 7.1, "unchanged"),
        (0.0, 3.0, "grew"),  # a new lesion
        (4.0, 0.0, "shrank"),  # resolved
        (0.0, 0.0, "unchanged"),
    ],
)
def test_change_follows_the_recist_thresholds(prior, current, change):
    assert scoring.change_between(prior, current) == change
    if prior:  # the same verdict from the percentage change, computed another way
        percent = round(100 * (current - prior) / prior, 6)
        expected = "grew" if percent >= 20 else "shrank" if percent <= -30 else "unchanged"
        assert change == expected


def test_change_scores_the_known_change_and_refuses_other_words():
    assert scoring.score_change("grew", {"change": "grew"}).score == 1.0
    assert scoring.score_change("grew", {"change": "unchanged"}).score == 0.0
    for bad in ({"change": "bigger"}, {"change": None}, {}):
        with pytest.raises(scoring.ResponseError):
            scoring.score_change("grew", bad)
    with pytest.raises(ValueError, match="negative"):
        scoring.change_between(-1.0, 2.0)


def test_is_normal_scores_against_what_was_shown():
    assert scoring.score_is_normal(True, {"normal": True}).score == 1.0
    assert scoring.score_is_normal(False, {"normal": True}).score == 0.0
    assert scoring.score_is_normal(False, {"normal": False}).detail == {
        "normal": False,
        "truth": False,
    }
    for bad in ({"normal": "yes"}, {"normal": 1}, {}):
        with pytest.raises(scoring.ResponseError):
            scoring.score_is_normal(True, bad)


# ---- keys, attempts and blinding --------------------------------------------------------------


def test_which_abnormal_shows_case_and_twin_in_random_order(
    educator, cohort, trainee, twinned_case
):
    quiz, item, question = one_question_quiz(
        educator, cohort, twinned_case, Question.Kind.WHICH_ABNORMAL
    )
    abnormal_at = set()
    for _ in range(12):
        attempt = Attempt.start(quiz=quiz, user=trainee)
        images = keys.shown_images(attempt, item)
        patients = [image.series.study.patient_id for image in images]
        assert sorted(patients) == sorted([twinned_case.pk, twinned_case.normal_twin.pk])
        # Both at the case's most severe timepoint.
        assert len({image.series.study.timepoint for image in images}) == 1
        abnormal = patients.index(twinned_case.pk)
        abnormal_at.add(abnormal)
        right, _ = answering.submit(attempt, question, {"image": abnormal})
        assert right.score == 1.0
    assert abnormal_at == {0, 1}  # the order tells nothing
    wrong_attempt = Attempt.start(quiz=quiz, user=trainee)
    abnormal = keys.abnormal_index(item, keys.shown_images(wrong_attempt, item))
    wrong, _ = answering.submit(wrong_attempt, question, {"image": 1 - abnormal})
    assert wrong.score == 0.0


def test_case_and_twin_copies_differ_only_in_pixels_and_opaque_uids(
    login, educator, cohort, trainee, twinned_case
):
    quiz, item, _ = one_question_quiz(educator, cohort, twinned_case, Question.Kind.WHICH_ABNORMAL)
    attempt = Attempt.start(quiz=quiz, user=trainee)
    client = login(trainee)
    page = client.get(reverse("edu:attempt-item", args=[attempt.pk, 0])).content.decode()
    assert twinned_case.normal_twin.patient_id not in page
    assert twinned_case.patient_id not in page
    copies = []
    for index in (0, 1):
        response = client.get(reverse("edu:attempt-image", args=[attempt.pk, item.pk, index]))
        assert response.status_code == 200
        copies.append(pydicom.dcmread(io.BytesIO(response.content)))
    first, second = copies
    assert set(first.dir()) == set(second.dir())
    stored = {
        image.sop_instance_uid: image for image in keys.shown_images(attempt, item)
    }  # neither copy carries a stored UID
    for copy in copies:
        assert copy.SOPInstanceUID not in stored
        assert copy.PatientID == "QUIZ"
        assert copy.SyntheticData == "YES"
        assert list(copy.ImageOrientationPatient) == [1, 0, 0, 0, 1, 0]  # the viewer's R/L
    varying = {"SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PixelData"}
    for keyword in set(first.dir()) - varying - {"WindowCenter", "WindowWidth"}:
        assert first.data_element(keyword).value == second.data_element(keyword).value, keyword


def test_change_since_the_prior_is_keyed_by_the_lesion_measurements(
    educator, cohort, trainee, twinned_case
):
    quiz, item, question = one_question_quiz(
        educator, cohort, twinned_case, Question.Kind.CHANGE, prior_study=1, current_study=3
    )
    attempt = Attempt.start(quiz=quiz, user=trainee)
    images = keys.shown_images(attempt, item)
    assert [image.series.study.timepoint for image in images] == [0, 2]
    areas = [
        LesionGroundTruth.objects.get(image=image).area_pixels for image in images
    ]  # the tiny generator gives no pixel spacing: discs of the same area, in pixels
    sizes = [2 * math.sqrt(area / math.pi) for area in areas]
    expected = scoring.change_between(*sizes)
    wrong = next(change for change in scoring.CHANGES if change != expected)
    answer, _ = answering.submit(attempt, question, {"change": wrong})
    assert answer.score == 0.0
    assert answer.detail["true"] == expected
    assert answer.detail["prior_size"] == pytest.approx(sizes[0])
    retry = Attempt.start(quiz=quiz, user=trainee)
    assert answering.submit(retry, question, {"change": expected})[0].score == 1.0
    from edu.trainee_view import item_view

    view = item_view(attempt, item, {question.pk: answer})
    assert view["labels"][0].startswith("Prior: timepoint 1")
    assert view["labels"][1] == "Current: timepoint 3"
    assert view["questions"][0]["feedback"]["true_change"] == expected


def test_a_change_question_needs_the_prior_before_the_current_study(educator, twinned_case):
    quiz = Quiz.objects.create(title="q", created_by=educator)
    item = QuizItem.objects.create(quiz=quiz, case=twinned_case)
    for prior, current in ((3, 2), (1, 4), (2, 2)):
        question = Question(
            item=item, kind="change", prompt="?", prior_study=prior, current_study=current
        )
        with pytest.raises(ValidationError, match="prior"):
            question.full_clean()


@pytest.mark.parametrize(("rate", "twin_shown"), [(1.0, True), (0.0, False)])
def test_is_normal_shows_the_twin_at_the_quizs_rate(
    educator, cohort, trainee, twinned_case, rate, twin_shown
):
    quiz, item, question = one_question_quiz(
        educator, cohort, twinned_case, Question.Kind.IS_NORMAL, rate=rate
    )
    attempt = Attempt.start(quiz=quiz, user=trainee)
    shown = keys.shown_images(attempt, item)
    patient = twinned_case.normal_twin if twin_shown else twinned_case
    assert {image.series.study.patient_id for image in shown} == {patient.pk}
    assert len(shown) == twinned_case.studies.count()
    answer, _ = answering.submit(attempt, question, {"normal": True})
    assert answer.score == (1.0 if twin_shown else 0.0)
    from edu.trainee_view import item_view

    view = item_view(attempt, item, {question.pk: answer})
    assert view["questions"][0]["feedback"]["was_normal"] is twin_shown
    assert ("normal twin" in view["case"]["diagnosis"]) is twin_shown


def test_is_normal_mixes_twins_in_near_the_rate(educator, cohort, trainee, twinned_case):
    quiz, item, _ = one_question_quiz(
        educator, cohort, twinned_case, Question.Kind.IS_NORMAL, rate=0.3
    )
    shown = [keys.shows_twin(Attempt.start(quiz=quiz, user=trainee), item) for _ in range(200)]
    assert 0.2 < sum(shown) / len(shown) < 0.4  # binomial(200, 0.3): sd 0.032


def test_twin_questions_need_a_twin_and_fit_their_item(educator, make_cases, twinned_case):
    (plain,) = make_cases(1)
    quiz = Quiz.objects.create(title="q", created_by=educator)
    item = QuizItem.objects.create(quiz=quiz, case=plain)
    for kind in ("which_abnormal", "is_normal"):
        with pytest.raises(ValidationError, match="no normal twin"):
            Question(item=item, kind=kind, prompt="?").full_clean()
    twinned = QuizItem.objects.create(quiz=quiz, case=twinned_case)
    Question.objects.create(item=twinned, kind="is_normal", prompt="Normal?")
    with pytest.raises(ValidationError, match="free text"):
        Question(item=twinned, kind="localisation", prompt="?").full_clean()
    Question(item=twinned, kind="free_text", prompt="Describe").full_clean()
    with pytest.raises(ValidationError, match="shown as"):
        Question(item=twinned, kind="which_abnormal", prompt="?").full_clean()


def test_quiz_rate_is_validated(educator):
    quiz = Quiz(title="q", created_by=educator, normal_twin_rate=1.5)
    with pytest.raises(ValidationError, match="normal_twin_rate"):
        quiz.full_clean()


def test_a_twin_is_never_an_item(login, educator, twinned_case):
    quiz = Quiz.objects.create(title="q", created_by=educator)
    with pytest.raises(ValidationError, match="normal twin"):
        QuizItem.objects.create(quiz=quiz, case=twinned_case.normal_twin)
    api = login(educator)
    url = f"/edu/api/quizzes/{quiz.pk}/items/"
    refused = api.post(url, {"case": twinned_case.normal_twin.pk}, content_type="application/json")
    assert refused.status_code == 400
    added = api.post(url, {"case": twinned_case.pk}, content_type="application/json")
    assert added.status_code == 201
