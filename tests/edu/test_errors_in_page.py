"""Every refused action comes back as the page it was sent from, in the site's layout, with
the reason beside the control and what the user typed or ticked kept; never a bare text
page, never a 500."""

import pytest
from django.urls import reverse

from edu.models import CurationRule, Question, Quiz

pytestmark = pytest.mark.django_db

LAYOUT = 'class="topbar"'


def _page(reply, status: int) -> str:
    assert reply.status_code == status
    assert reply["Content-Type"].startswith("text/html")
    text = reply.content.decode()
    assert LAYOUT in text, text[:300]
    return text


@pytest.fixture
def draft(educator, cohort):
    return Quiz.objects.create(title="Draft", cohort=cohort, created_by=educator)


def test_a_single_best_question_without_a_correct_option_is_refused_in_the_page(
    login, educator, draft, make_cases
):
    item = draft.items.create(case=make_cases(1)[0], order=0)
    p = f"i{item.pk}"
    reply = login(educator).post(
        reverse("edu:question-add", args=[item.pk]),
        {
            f"{p}-kind": "single_best",
            f"{p}-prompt": "Which finding is shown?",
            f"{p}-options_text": "Glioma\nAbscess",
            f"{p}-tolerance": 0.1,
            f"{p}-points": 1,
        },
    )
    page = _page(reply, 400)
    assert "exactly one option must be correct" in page
    assert 'value="Which finding is shown?"' in page  # the prompt typed is kept
    assert "Glioma\nAbscess</textarea>" in page
    assert "<details open>" in page
    assert not Question.objects.exists()


def test_publishing_an_empty_quiz_says_why_in_the_quiz_page(login, educator, draft):
    page = _page(login(educator).post(reverse("edu:quiz-publish", args=[draft.pk])), 400)
    assert 'id="publish-error"' in page
    assert "Add at least one item" in page
    draft.refresh_from_db()
    assert not draft.is_published


def test_add_selected_with_nothing_ticked_says_so_in_the_quiz_page(login, educator, draft):
    page = _page(login(educator).post(reverse("edu:quiz-add-items", args=[draft.pk]), {}), 400)
    assert "Tick one or more cases to add." in page
    assert 'id="add-items-form"' in page


def test_a_curation_threshold_above_five_is_refused_in_the_curation_page(
    login, educator, make_cases
):
    template = make_cases(1)[0].template_version.template
    p = f"t{template.pk}"
    reply = login(educator).post(
        reverse("edu:curation-rule", args=[template.pk]),
        {f"{p}-min_reviews": 1, f"{p}-min_mean_realism": 9},
    )
    page = _page(reply, 400)
    assert "Not saved: Min mean realism (1 to 5): Ensure this value is less than or equal to 5" in (
        page
    )
    assert f'name="{p}-min_mean_realism" value="9"' in page  # the input is kept
    assert 'max="5"' in page
    assert not CurationRule.objects.exists()


def test_a_bad_grade_is_refused_beside_the_answer(login, educator, trainee, quiz):
    from edu import answering
    from edu.models import Attempt

    attempt = Attempt.start(quiz=quiz, user=trainee)
    free_text = quiz.items.get().questions.get(kind="free_text")
    answer, _ = answering.submit(attempt, free_text, {"text": "A mass."})
    attempt.finish()
    page = _page(
        login(educator).post(reverse("edu:grade-answer", args=[answer.pk]), {"score": "7"}), 400
    )
    assert "The grade is a number from 0 to 1, not &#x27;7&#x27;." in page
    assert 'step="0.1" required value="7"' in page


def test_a_trainee_on_an_educator_page_gets_the_403_page_in_the_layout(login, trainee):
    page = _page(login(trainee).get(reverse("edu:curation")), 403)
    assert "You may not open this page" in page
    assert "trainee" in page  # the role they have


def test_a_missing_page_is_the_404_page_in_the_layout(login, trainee):
    client = login(trainee)
    page = _page(client.post("/edu/quizzes/999999/start/"), 404)
    assert "Nothing here" in page
    page = _page(client.get("/no/such/page/"), 404)
    assert "There is no page at /no/such/page/" in page


def test_an_action_opened_as_a_page_is_the_405_page_in_the_layout(login, trainee):
    reply = login(trainee).get("/edu/quizzes/999999/start/")
    page = _page(reply, 405)
    assert reply["Allow"] == "POST"
    assert "This address is an action, not a page" in page
