"""A rater completes a short blinded study in the browser; the educator closes it and the
results page shows the figures and plots."""

import numpy as np
import pytest

from tests.browser.conftest import READ_CANVAS
from tests.factories import PASSWORD
from tests.turing.conftest import make_study, pool, raters  # noqa: F401 (fixtures)
from turing.models import Response

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, base, user):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_a_rater_completes_a_study_and_the_results_show_figures_and_plots(
    live_server,
    browser,
    make_study,  # noqa: F811 (the imported fixture)
    raters,  # noqa: F811
    educator,
):
    study = make_study(n_cases=1, n_images=4)
    errors = []
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.on("console", lambda m: m.type == "error" and errors.append(m.text))
    context.on("weberror", lambda e: errors.append(str(e.error)))
    page = context.new_page()
    log_in(page, live_server.url, raters[0])
    page.goto(f"{live_server.url}/turing/")
    page.click("text=Start")
    page.fill("input[name=experience_years]", "6")
    page.click("button:has-text('Begin')")
    for position in range(1, 5):
        page.wait_for_selector(f"h1:has-text('image {position} of 4')")
        page.wait_for_selector("#gantry-viewer[data-rendered]", timeout=20_000)
        grey = np.array(page.evaluate(READ_CANVAS, "#gantry-viewer"), dtype=float)
        assert grey.std() > 5, "the blinded image did not render"
        page.wait_for_timeout(150)  # on screen a little while before answering
        page.check(f"input[name=call][value={'synthetic' if position % 2 else 'real'}]")
        page.check("input[name=confidence][value='4']")
        page.click("button:has-text('Save and continue')")
    page.wait_for_selector("#turing-done")
    responses = Response.objects.filter(rater__user=raters[0])
    assert responses.count() == 4
    assert all(r.time_on_image_ms >= 100 for r in responses)
    context.close()

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    log_in(page, live_server.url, educator)
    page.goto(f"{live_server.url}{study.get_absolute_url()}")
    page.click("button:has-text('Close the study')")
    page.wait_for_selector("#turing-summary")
    assert "Accuracy" in page.inner_text("#turing-summary")
    for plot in ("roc", "accuracy", "fooling"):
        assert page.locator(f"svg[data-plot={plot}]").is_visible()
    assert page.locator("svg[data-plot=roc] polyline.roc-curve").count() == 1
    assert errors == []
    context.close()
