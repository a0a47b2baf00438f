"""The pages: an expert's review, authoring a quiz, taking it, results and progress."""

import io

import pydicom
import pytest
from django.urls import reverse

from cases.models import SyntheticPatient
from edu.models import Answer, Attempt, Question, Quiz, Review
from tests.edu.conftest import build_quiz, perfect_responses
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_expert_reviews_a_case_on_its_page(login, expert, make_cases):
    case = make_cases(1, status="draft")[0]
    client = login(expert)
    page = client.get(reverse("edu:review-case", args=[case.pk]))
    assert b'id="gantry-viewer"' in page.content
    assert page.content.count(b'name="shows_finding"') == 3  # yes, no, unsure; no blank radio
    text = page.content.decode()
    for anchor in ("1 · clearly artificial", "5 · indistinguishable from a clinical image"):
        assert anchor in text  # each point of the scales says what it means
    assert "5 · excellent, worth a quiz" in text
    bad = client.post(reverse("edu:review-case", args=[case.pk]), {"realism": 9})
    assert bad.status_code == 400
    client.post(
        reverse("edu:review-case", args=[case.pk]),
        {"realism": 5, "shows_finding": "yes", "teaching_value": 4, "comment": "fine"},
    )
    case.refresh_from_db()
    assert case.status == SyntheticPatient.Status.IN_REVIEW
    assert case.reviews.get().comment == "fine"


def test_an_educator_builds_and_publishes_a_quiz(login, educator, cohort, make_cases):
    case = make_cases(1)[0]
    client = login(educator)
    reply = client.post(
        reverse("edu:quiz-create"),
        {
            "title": "Week 1",
            "mode": "practice",
            "cohort": cohort.pk,
            "allow_back": "on",
            "unknown_case": "on",
        },
    )
    quiz = Quiz.objects.get(title="Week 1")
    assert reply.url == reverse("edu:quiz-edit", args=[quiz.pk])
    page = client.get(reverse("edu:quiz-edit", args=[quiz.pk]), {"finding": "glioma"})
    assert f'value="{case.pk}"'.encode() in page.content
    # Each candidate shows a thumbnail of its last study, its finding and its severity.
    row = page.content.decode().split(f'data-case="{case.pk}"')[1].split("</tr>")[0]
    last = case.studies.order_by("-timepoint").first()
    assert f'<td class="finding">{case.template_version.finding}</td>' in row
    assert f'<td class="severity">{last.severity:.2f} ' in row
    thumbnail = row.split('class="case-thumb" src="')[1].split('"')[0]
    assert thumbnail.startswith(f"/dicomweb/studies/{last.study_uid}/")
    assert client.get(thumbnail, HTTP_ACCEPT="image/*")["Content-Type"] == "image/jpeg"
    assert client.post(reverse("edu:quiz-publish", args=[quiz.pk])).status_code == 400
    client.post(reverse("edu:quiz-add-items", args=[quiz.pk]), {"cases": [case.pk]})
    item = quiz.items.get()
    prefix = f"i{item.pk}"
    reply = client.post(
        reverse("edu:question-add", args=[item.pk]),
        {
            f"{prefix}-kind": "single_best",
            f"{prefix}-prompt": "Diagnosis?",
            f"{prefix}-options_text": "* Glioma | yes\nAbscess | no",
            f"{prefix}-tolerance": 0.1,
            f"{prefix}-points": 1,
        },
    )
    assert reply.status_code == 302
    assert item.questions.get().options[0] == {"text": "Glioma", "correct": True, "feedback": "yes"}
    assert client.post(reverse("edu:quiz-publish", args=[quiz.pk])).status_code == 302
    quiz.refresh_from_db()
    assert quiz.is_published


def test_the_curation_page_says_why_a_case_waits_and_an_educator_approves_it(
    login, educator, expert, make_cases
):
    case = make_cases(1, status="draft")[0]
    Review.submit(case=case, expert=expert, realism=5, shows_finding="yes", teaching_value=4)
    client = login(educator)
    page = client.get(reverse("edu:curation")).content.decode()
    assert "1 of the 2 reviews the rule needs." in page
    reply = client.post(reverse("edu:case-approve", args=[case.pk]))
    assert reply.status_code == 302
    case.refresh_from_db()
    assert case.status == SyntheticPatient.Status.APPROVED
    # A later review no longer moves a case approved by hand.
    other = UserFactory(role="expert")
    Review.submit(case=case, expert=other, realism=1, shows_finding="no", teaching_value=1)
    case.refresh_from_db()
    assert case.status == SyntheticPatient.Status.APPROVED


def test_a_trainee_takes_a_quiz_through_the_pages(login, trainee, quiz):
    client = login(trainee)
    reply = client.post(reverse("edu:attempt-start", args=[quiz.pk]))
    attempt = Attempt.objects.get(user=trainee)
    assert reply.url == reverse("edu:attempt-item", args=[attempt.pk, 0])
    page = client.get(reply.url).content.decode()
    assert "Glioma" in page
    assert "Infiltrative" not in page
    item = attempt.items()[0]
    form = {}
    for question, response in perfect_responses(attempt, item).items():
        p = f"q{question.pk}"
        if question.kind == Question.Kind.STAGING:
            for rank, shown in enumerate(response["order"]):
                form[f"{p}_pos_{shown}"] = rank + 1
        elif question.kind == Question.Kind.LOCALISATION:
            form.update(
                {f"{p}_image": response["image"], f"{p}_x": response["x"], f"{p}_y": response["y"]}
            )
        else:
            key, value = next(iter(response.items()))
            form[f"{p}_{key}"] = value
    client.post(reverse("edu:attempt-item", args=[attempt.pk, 0]), form)
    assert Answer.objects.filter(attempt=attempt).count() == 5
    page = client.get(reverse("edu:attempt-item", args=[attempt.pk, 0])).content.decode()
    assert 'data-percent="100.0"' in page
    assert "Infiltrative" in page
    assert 'id="case-diagnosis"' in page


def test_an_incomplete_item_form_is_400_with_a_message(login, trainee, quiz):
    client = login(trainee)
    client.post(reverse("edu:attempt-start", args=[quiz.pk]))
    attempt = Attempt.objects.get(user=trainee)
    reply = client.post(reverse("edu:attempt-item", args=[attempt.pk, 0]), {})
    assert reply.status_code == 400
    assert b'id="answer-error"' in reply.content


def test_an_exam_saves_the_questions_answered_and_says_so(login, trainee, educator, cohort, case):
    exam = build_quiz(educator, cohort, case, mode=Quiz.Mode.EXAM)
    client = login(trainee)
    client.post(reverse("edu:attempt-start", args=[exam.pk]))
    attempt = Attempt.objects.get(user=trainee)
    text = attempt.items()[0].questions.get(kind="free_text")
    url = reverse("edu:attempt-item", args=[attempt.pk, 0])
    reply = client.post(url, {f"q{text.pk}_text": "A mass in the left hemisphere."})
    assert reply.status_code == 302
    assert Answer.objects.get(attempt=attempt).response == {
        "text": "A mass in the left hemisphere."
    }
    page = client.get(reply.url).content.decode()
    assert 'id="answers-saved"' in page
    assert "Saved: 1 answer." in page
    assert "A mass in the left hemisphere.</textarea>" in page


def test_quiz_images_are_blinded(login, trainee, quiz):
    client = login(trainee)
    client.post(reverse("edu:attempt-start", args=[quiz.pk]))
    attempt = Attempt.objects.get(user=trainee)
    item = attempt.items()[0]
    url = reverse("edu:attempt-image", args=[attempt.pk, item.pk, 0])
    ds = pydicom.dcmread(io.BytesIO(client.get(url).content))
    for keyword in (
        "StudyDate",
        "ImageComments",
        "StudyDescription",
        "SeriesDescription",
        "ContentDate",
        "PatientBirthDate",
        "AccessionNumber",
    ):
        assert keyword not in ds, keyword
    assert ds.SyntheticData == "YES"
    assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
    study_uids = set(item.case.studies.values_list("study_uid", flat=True))
    assert ds.StudyInstanceUID not in study_uids


def test_results_dashboard_and_csv(login, client, trainee, quiz, educator):
    before = login(educator).get(reverse("edu:quiz-results", args=[quiz.pk])).content.decode()
    assert "<svg" not in before  # no score distribution of nobody
    assert "No trainee has finished this quiz yet." in before
    client.logout()
    attempt = Attempt.start(quiz=quiz, user=trainee)
    from edu import answering

    for question, response in perfect_responses(attempt, attempt.items()[0]).items():
        answering.submit(attempt, question, response)
    attempt.finish()
    free_text = Answer.objects.get(question__kind="free_text")
    client = login(educator)
    page = client.get(reverse("edu:quiz-results", args=[quiz.pk])).content.decode()
    assert "<svg" in page
    assert trainee.username in page
    client.post(reverse("edu:grade-answer", args=[free_text.pk]), {"score": "0.5"})
    csv_text = client.get(reverse("edu:quiz-results-csv", args=[quiz.pk])).content.decode()
    assert csv_text.splitlines()[1].split(",")[3:7] == ["4.5", "5.0", "90.0", "0"]
    assert (
        client.post(reverse("edu:grade-answer", args=[free_text.pk]), {"score": "7"}).status_code
        == 400
    )
    client.logout()
    client = login(trainee)
    page = client.get(reverse("edu:dashboard")).content.decode()
    assert page.count("<svg") == 3
    assert "glioma" in page


def test_the_generator_page_shows_mean_realism(login, educator, make_cases):
    case = make_cases(1, status="draft")[0]
    from edu.models import Review

    for realism in (3, 4):
        Review.submit(
            case=case,
            expert=UserFactory(role="expert"),
            realism=realism,
            shows_finding="yes",
            teaching_value=3,
        )
    generator = case.template_version.generator
    page = login(educator).get(reverse("generator-detail", args=[generator.pk])).content
    assert b'data-mean-realism="3.50"' in page
    curation = login(educator).get(reverse("edu:curation")).content.decode()
    assert "ICC(2,1)" in curation
