"""A quiz shows every contrast of a multi-contrast study (T1, FLAIR, T1c of a brain MRI), yet
asks about the study once: the contrasts are addressed by the study's place in the attempt,
called by their contrast alone, and a lesion click on any of them is a click on the study."""

import io

import numpy as np
import pydicom
import pytest
from django.urls import reverse

from cases.models import Series
from edu import answering, keys
from edu.models import Answer, Attempt, Question, Quiz, QuizItem
from tests.edu.conftest import build_quiz
from tests.factories import add_brain_contrasts

CONTRASTS = ["T1", "FLAIR", "T1c"]


@pytest.fixture
def brain_case(case):
    add_brain_contrasts(case)
    return case


@pytest.fixture
def twinned_brain_case(twinned_case):
    add_brain_contrasts(twinned_case)
    add_brain_contrasts(twinned_case.normal_twin)
    return twinned_case


def _copy(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return pydicom.dcmread(io.BytesIO(response.content))


def _stored_pixels(image):
    with image.file.open("rb") as fh:
        return pydicom.dcmread(fh).pixel_array


def test_each_shown_study_offers_its_contrasts_and_nothing_tells_the_order(
    login, educator, cohort, trainee, brain_case
):
    quiz = build_quiz(educator, cohort, brain_case)  # staging: the studies shuffled
    attempt = Attempt.start(quiz=quiz, user=trainee)
    item = attempt.items()[0]
    client = login(trainee)
    view = client.get(f"/edu/api/attempts/{attempt.pk}/").json()["items"][0]
    shown = keys.shown_images(attempt, item)
    assert len(view["images"]) == len(view["contrasts"]) == brain_case.studies.count()
    study_uids = set()
    for index, (image, contrasts) in enumerate(zip(shown, view["contrasts"], strict=True)):
        # Called by contrast alone (the stored descriptions name the timepoint), addressed by
        # the study's place in this attempt; the first is the shown image itself.
        assert [c["label"] for c in contrasts] == CONTRASTS
        assert contrasts[0]["image"] == view["images"][index]
        for number in (1, 2):
            assert contrasts[number]["image"] == reverse(
                "edu:attempt-contrast", args=[attempt.pk, item.pk, index, number]
            )
        copies = [_copy(client, c["image"]) for c in contrasts]
        for copy, stored in zip(copies, keys.contrasts_of(image), strict=True):
            assert np.array_equal(copy.pixel_array, _stored_pixels(stored))  # its own study's
            assert copy.SOPInstanceUID != stored.sop_instance_uid
            assert "SeriesDescription" not in copy
        assert len({copy.StudyInstanceUID for copy in copies}) == 1  # one study
        assert len({copy.SeriesInstanceUID for copy in copies}) == 3
        study_uids.add(copies[0].StudyInstanceUID)
    assert len(study_uids) == len(shown)
    assert not study_uids & set(brain_case.studies.values_list("study_uid", flat=True))
    missing = reverse("edu:attempt-contrast", args=[attempt.pk, item.pk, 0, 3])
    assert client.get(missing).status_code == 404

    page = client.get(reverse("edu:attempt-item", args=[attempt.pk, 0]))
    html = page.content.decode()
    for description in (
        Series.objects.filter(study__patient=brain_case)
        .exclude(modality="SEG")
        .values_list("description", flat=True)
    ):
        assert description not in html
    data = page.context["viewer_data"]
    assert [study["label"] for study in data["studies"]] == view["labels"]
    for study, contrasts in zip(data["studies"], view["contrasts"], strict=True):
        assert [s["label"] for s in study["series"]] == CONTRASTS
        assert [s["imageIds"] for s in study["series"]] == [
            [f"wadouri:{c['image']}"] for c in contrasts
        ]


def test_the_contrasts_of_a_case_and_its_twin_look_alike(
    login, educator, cohort, trainee, twinned_brain_case
):
    quiz = Quiz.objects.create(title="Twins", cohort=cohort, created_by=educator)
    item = QuizItem.objects.create(quiz=quiz, case=twinned_brain_case)
    Question.objects.create(item=item, kind=Question.Kind.WHICH_ABNORMAL, prompt="Abnormal?")
    quiz.publish()
    attempt = Attempt.start(quiz=quiz, user=trainee)
    client = login(trainee)
    view = client.get(f"/edu/api/attempts/{attempt.pk}/").json()["items"][0]
    first, second = view["contrasts"]
    assert [c["label"] for c in first] == [c["label"] for c in second] == CONTRASTS
    for a, b in zip(first, second, strict=True):
        case_copy, twin_copy = _copy(client, a["image"]), _copy(client, b["image"])
        assert set(case_copy.dir()) == set(twin_copy.dir())
    page = client.get(reverse("edu:attempt-item", args=[attempt.pk, 0])).content.decode()
    assert twinned_brain_case.patient_id not in page
    assert twinned_brain_case.normal_twin.patient_id not in page


def test_a_click_on_a_studys_flair_scores_like_a_click_on_its_t1(
    login, educator, cohort, trainee, brain_case
):
    quiz = build_quiz(educator, cohort, brain_case)
    attempt = Attempt.start(quiz=quiz, user=trainee)
    item = attempt.items()[0]
    question = item.questions.get(kind=Question.Kind.LOCALISATION)
    shown = keys.shown_images(attempt, item)
    areas = [int(lesion.mask.sum()) if (lesion := keys.lesion_of(i)) else 0 for i in shown]
    target = int(np.argmax(areas))
    rows, cols = np.nonzero(keys.lesion_of(shown[target]).mask)
    x, y = float(cols[0]) + 0.5, float(rows[0]) + 0.5

    # The page hangs the study's FLAIR in the study's panel: a click there reports the study.
    client = login(trainee)
    page = client.get(reverse("edu:attempt-item", args=[attempt.pk, 0]))
    panel = page.context["viewer_data"]["studies"][target]
    flair = next(s for s in panel["series"] if s["label"] == "FLAIR")
    copy = _copy(client, flair["imageIds"][0].removeprefix("wadouri:"))
    stored_flair = keys.contrasts_of(shown[target])[1]
    assert stored_flair.series.description.startswith("Synthetic FLAIR")
    assert np.array_equal(copy.pixel_array, _stored_pixels(stored_flair))
    assert (copy.Rows, copy.Columns) == keys.lesion_of(shown[target]).mask.shape

    reply = client.post(
        reverse("edu:attempt-item", args=[attempt.pk, 0]),
        {f"q{question.pk}_image": str(target), f"q{question.pk}_x": x, f"q{question.pk}_y": y},
    )
    assert reply.status_code == 302
    on_flair = Answer.objects.get(attempt=attempt, question=question)
    on_t1 = answering.score(attempt, question, {"image": target, "x": x, "y": y})
    assert on_flair.score == on_t1.score == 1.0
    assert on_flair.detail == on_t1.detail
