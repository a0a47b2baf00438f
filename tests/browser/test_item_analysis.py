"""An educator reads a quiz's item analysis in the browser: from the quiz list to its
results, the options each trainee chose, and the CSV download."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from edu import answering
from edu.models import Attempt
from tests.browser.quiz_page import logged_in_page
from tests.edu.conftest import build_quiz

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_educator_reads_distractors_and_downloads_the_csv(
    browser, live_server, educator, trainee, other_trainee, make_cases
):
    from django.contrib.auth.models import Group

    cohort = Group.objects.create(name="cohort-b")
    for user in (trainee, other_trainee):
        user.groups.add(cohort)
    quiz = build_quiz(educator, cohort, make_cases(1)[0])
    question = quiz.items.get().questions.get(kind="single_best")
    for user, option in ((trainee, 0), (other_trainee, 2)):
        attempt = Attempt.start(quiz=quiz, user=user)
        answering.submit(attempt, question, {"option": option})
        attempt.finish()

    errors: list[str] = []
    context, page = logged_in_page(browser, live_server, educator, errors)
    page.goto(f"{live_server.url}/edu/quizzes/")
    page.click(f"a[href='/edu/quizzes/{quiz.pk}/results/']")
    table = page.locator(f"table.distractors[data-question='{question.pk}']")
    rows = table.locator("tbody tr")
    assert rows.count() == 3
    assert "(key)" in rows.nth(0).inner_text()
    assert "not working as a distractor" in rows.nth(1).inner_text()  # nobody chose it
    assert rows.nth(2).locator("td").nth(1).inner_text() == "1"
    with page.expect_download() as download:
        page.click("#items-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    chosen = [(r["option_text"], r["chosen"]) for r in rows if r["question"] == "1" and r["option"]]
    assert chosen == [("Glioma", "1"), ("Abscess", "0"), ("Infarct", "1")]
    assert errors == []
    context.close()
