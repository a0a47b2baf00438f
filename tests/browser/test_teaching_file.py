"""An educator exports a case as a teaching file and imports it back, in the browser: from
the case page to the export page, the download, a pool for synthetic teaching files, the
upload (imported by a worker while its page follows), and the key shown per image."""

from __future__ import annotations

import pytest

from cases.models import ReferenceImage, ReferencePool
from tests.browser.quiz_page import logged_in_page
from tests.cases.test_teaching_file import PROGRESSION

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_educator_exports_a_teaching_file_and_imports_it_back(
    browser, live_server, educator, make_cases, task_queue
):
    case = make_cases(1, progression=PROGRESSION, diagnosis="Glioblastoma")[0]
    errors: list[str] = []
    context, page = logged_in_page(browser, live_server, educator, errors)
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    page.click("#case-export")
    with page.expect_download() as download:
        page.click("#teaching-file")
    path = download.value.path()
    assert download.value.suggested_filename == f"{case.patient_id}-teaching-file.zip"

    page.goto(f"{live_server.url}/reference/")
    page.fill("input[name=name]", "Teaching files")
    page.check("input[name=holds_synthetic]")
    page.click("form button:has-text('Create pool')")
    page.wait_for_selector("text=never the real side of a Turing study")
    page.set_input_files("input[name=files]", path)
    page.check("input[name=kind][value=teaching_file]")
    page.click("form button:has-text('Import')")
    page.wait_for_selector("#operation[data-status=queued]")  # the import's page, at once
    assert task_queue.run() == 1  # a worker takes it; the page follows and shows the report
    page.wait_for_selector("#operation-summary", timeout=20_000)
    assert "3 imported" in page.inner_text("#operation-summary")
    page.click("#operation-link")
    keys = page.locator("td.key").all_inner_texts()
    assert [k.split(",")[1].strip() for k in keys] == ["timepoint 0", "timepoint 1", "timepoint 2"]
    assert all(k.startswith("Glioblastoma") for k in keys)
    pool = ReferencePool.objects.get(name="Teaching files")
    assert pool.images.filter(origin=ReferenceImage.Origin.TEACHING_FILE).count() == 3
    assert errors == []
    context.close()
