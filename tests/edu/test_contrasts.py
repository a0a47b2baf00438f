"""A quiz, and a practice review alike, shows every contrast of a multi-contrast study (T1,
FLAIR, T1c of a brain MRI), yet asks about the study once: the contrasts are addressed by the
study's place in the attempt (or the review), called by their contrast alone, and a lesion
click on any of them is a click on the study."""

import io

import numpy as np
import pydicom
import pytest
from django.urls import reverse

from cases.models import Series
from edu import answering, keys, practice
from edu.models import Answer, Attempt, ConceptCard, Question, Quiz, QuizItem
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


# --- practice ---------------------------------------------------------------------------------


@pytest.fixture
def brain_review(trainee, brain_case):
    """A practice review of the brain case, its trainee's only unseen case of the concept."""
    card = ConceptCard.open(trainee=trainee, template=brain_case.template_version.template)
    review = practice.draw(card).review
    assert review.case == brain_case
    return review


def _practice_contrast(review, index, contrast):
    return reverse("edu:practice-contrast", args=[review.pk, index, contrast])


def test_a_practice_review_offers_each_studys_contrasts_by_contrast_alone(
    login, trainee, brain_case, brain_review
):
    client = login(trainee)
    page = client.get(reverse("edu:practice-review", args=[brain_review.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for description in (
        Series.objects.filter(study__patient=brain_case)
        .exclude(modality="SEG")
        .values_list("description", flat=True)
    ):
        assert description not in html  # "Synthetic FLAIR t2" would name the timepoint
    data = page.context["viewer_data"]
    n_studies = brain_case.studies.count()
    assert "imageIds" not in data
    assert [study["label"] for study in data["studies"]] == [
        f"Timepoint {i + 1}" for i in range(n_studies)
    ]
    assert data["labels"] == [study["label"] for study in data["studies"]]
    for index, study in enumerate(data["studies"]):
        assert [s["key"] for s in study["series"]] == CONTRASTS
        assert [s["label"] for s in study["series"]] == CONTRASTS
        assert [s["imageIds"] for s in study["series"]] == [
            [f"wadouri:{reverse('edu:practice-image', args=[brain_review.pk, index])}"],
            [f"wadouri:{_practice_contrast(brain_review, index, 1)}"],
            [f"wadouri:{_practice_contrast(brain_review, index, 2)}"],
        ]


def test_a_practice_case_of_one_series_per_study_keeps_one_image_per_study(login, trainee, case):
    card = ConceptCard.open(trainee=trainee, template=case.template_version.template)
    review = practice.draw(card).review
    page = login(trainee).get(reverse("edu:practice-review", args=[review.pk]))
    data = page.context["viewer_data"]
    assert "studies" not in data
    assert data["imageIds"] == [
        f"wadouri:{reverse('edu:practice-image', args=[review.pk, i])}"
        for i in range(case.studies.count())
    ]
    assert login(trainee).get(_practice_contrast(review, 0, 1)).status_code == 404


def test_a_practice_contrast_is_the_studys_other_contrast_blinded(
    login, trainee, brain_case, brain_review
):
    client = login(trainee)
    images = keys.images_of_case(brain_case)
    study_uids = set()
    for index, image in enumerate(images):
        stored = keys.contrasts_of(image)
        assert [s.series.description.split()[1] for s in stored] == CONTRASTS
        copies = [
            _copy(client, reverse("edu:practice-image", args=[brain_review.pk, index])),
            _copy(client, _practice_contrast(brain_review, index, 1)),
            _copy(client, _practice_contrast(brain_review, index, 2)),
        ]
        for copy, original in zip(copies, stored, strict=True):
            assert np.array_equal(copy.pixel_array, _stored_pixels(original))
            assert copy.SOPInstanceUID != original.sop_instance_uid
            assert copy.SeriesInstanceUID != original.series.series_uid
            assert "SeriesDescription" not in copy
        assert not np.array_equal(copies[0].pixel_array, copies[1].pixel_array)
        assert len({copy.StudyInstanceUID for copy in copies}) == 1  # one study
        assert len({copy.SeriesInstanceUID for copy in copies}) == 3
        assert len({copy.SOPInstanceUID for copy in copies}) == 3
        study_uids.add(copies[0].StudyInstanceUID)
        again = _copy(client, _practice_contrast(brain_review, index, 1))
        assert again.SOPInstanceUID == copies[1].SOPInstanceUID  # stable: the viewer caches
    assert len(study_uids) == len(images)
    assert not study_uids & set(brain_case.studies.values_list("study_uid", flat=True))


def test_a_practice_contrast_out_of_range_or_of_another_trainee_is_not_found(
    login, trainee, other_trainee, brain_case, brain_review
):
    n_studies = brain_case.studies.count()
    client = login(trainee)
    assert client.get(_practice_contrast(brain_review, 0, 2)).status_code == 200
    assert client.get(_practice_contrast(brain_review, 0, 3)).status_code == 404
    assert client.get(_practice_contrast(brain_review, n_studies, 1)).status_code == 404
    assert client.post(_practice_contrast(brain_review, 0, 1)).status_code == 405
    client = login(other_trainee)
    assert client.get(_practice_contrast(brain_review, 0, 1)).status_code == 404
    assert client.get(reverse("edu:practice-review", args=[brain_review.pk])).status_code == 404


def test_a_practice_click_on_a_studys_flair_scores_on_the_studys_mask(
    login, trainee, brain_case, brain_review
):
    images = keys.images_of_case(brain_case)
    areas = [int(lesion.mask.sum()) if (lesion := keys.lesion_of(i)) else 0 for i in images]
    target = int(np.argmax(areas))
    mask = keys.lesion_of(images[target]).mask
    rows, cols = np.nonzero(mask)

    # The page hangs the study's FLAIR in the study's panel, aligned with the study's mask.
    client = login(trainee)
    url = reverse("edu:practice-review", args=[brain_review.pk])
    panel = client.get(url).context["viewer_data"]["studies"][target]
    flair = next(s for s in panel["series"] if s["label"] == "FLAIR")
    copy = _copy(client, flair["imageIds"][0].removeprefix("wadouri:"))
    assert np.array_equal(copy.pixel_array, _stored_pixels(keys.contrasts_of(images[target])[1]))
    assert (copy.Rows, copy.Columns) == mask.shape

    finding = practice.questions(brain_review)[0]
    right = next(i for i, option in enumerate(finding["options"]) if option["correct"])
    form = {
        "qfinding_option": right,
        "qlesion_image": target,  # what the viewer reports of a click on the panel's FLAIR
        "qlesion_x": float(cols[0]) + 0.5,
        "qlesion_y": float(rows[0]) + 0.5,
    }
    assert client.post(url, form).status_code == 302
    brain_review.refresh_from_db()
    assert brain_review.detail["lesion"]["score"] == 1.0
    assert brain_review.detail["lesion"]["inside"] is True
