"""A rater walks a realism-lab study in the browser: an uninformed phase of quality scores
that never mentions synthetic images, then 2AFC trials; and a training study's feedback."""

import pytest

from tests.factories import PASSWORD
from tests.turing.conftest import make_study, pool, raters  # noqa: F401 (fixtures)
from turing.models import QualityRating, StudyImage, TrialResponse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, base, user):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def open_context(browser, errors):
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    context.on("console", lambda m: m.type == "error" and errors.append(m.text))
    context.on("weberror", lambda e: errors.append(str(e.error)))
    return context


def assert_uninformed(page):
    text = page.inner_text("body").lower()
    for word in ("synthetic", "generative", "turing"):
        assert word not in text, word


def test_an_uninformed_quality_phase_then_2afc_trials(
    live_server,
    browser,
    make_study,  # noqa: F811 (the imported fixture)
    raters,  # noqa: F811
):
    study = make_study(n_cases=1, n_images=4, uninformed_phase=True, format="2afc")
    errors = []
    context = open_context(browser, errors)
    page = context.new_page()
    log_in(page, live_server.url, raters[0])
    page.goto(f"{live_server.url}/turing/")
    assert_uninformed(page)
    page.click("text=Start")
    assert_uninformed(page)
    page.click("button:has-text('Begin')")
    for position in range(1, 5):
        page.wait_for_selector(f"h1:has-text('image {position} of 4')")
        page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
        assert_uninformed(page)
        page.wait_for_timeout(150)
        page.check(f"input[name=quality][value='{1 + position}']")
        page.click("button:has-text('Save and continue')")
    page.wait_for_selector("#turing-part-two")
    assert "made by a generative model" in page.inner_text("#turing-part-two")
    for position in (1, 2):
        page.wait_for_selector(f"h1:has-text('trial {position} of 2')")
        page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
        assert "Which image is real?" in page.inner_text("#turing-response")
        page.wait_for_timeout(150)
        page.check("input[name=pick][value='A']")
        page.click("button:has-text('Save and continue')")
    page.wait_for_selector("#turing-done")
    assert sorted(QualityRating.objects.values_list("quality", flat=True)) == [2, 3, 4, 5]
    trials = TrialResponse.objects.filter(rater__user=raters[0])
    assert trials.count() == 2
    assert all(t.time_on_image_ms >= 100 for t in trials)
    assert all(t.chosen_id == study.trials()[t.trial][0] for t in trials)  # image A
    assert errors == []
    context.close()


def test_a_training_study_says_after_each_pick_which_image_was_synthetic(
    live_server,
    browser,
    make_study,  # noqa: F811
    raters,  # noqa: F811
):
    study = make_study(n_cases=1, n_images=4, format="2afc", training=True)
    errors = []
    context = open_context(browser, errors)
    page = context.new_page()
    log_in(page, live_server.url, raters[1])
    page.goto(f"{live_server.url}/turing/studies/{study.pk}/start/")
    assert "after each answer you are told" in page.inner_text("#turing-intro")
    page.click("button:has-text('Begin')")
    for position in (1, 2):
        page.wait_for_selector(f"h1:has-text('trial {position} of 2')")
        page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
        page.check("input[name=pick][value='B']")
        page.click("button:has-text('Save and continue')")
        page.wait_for_selector("#turing-feedback")
        response = TrialResponse.objects.filter(rater__user=raters[1]).latest("created_at")
        shown = study.trials()[response.trial]
        synthetic = "AB"[[StudyImage.objects.get(pk=pk).is_synthetic for pk in shown].index(True)]
        text = page.inner_text("#turing-feedback")
        assert text.startswith("Correct." if response.correct else "Wrong.")
        assert f"You picked image B. Image {synthetic} is the synthetic one." in text
        page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
        page.click("a:has-text('Next')")
    page.wait_for_selector("#turing-done")
    assert errors == []
    context.close()
