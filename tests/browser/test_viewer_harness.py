"""The DICOM viewer (static/js/viewer.js) in headless Chromium, without Django.

A thread serves the repository root (so the harness page loads the real static files) and the
DICOM written by viewer_harness/make_sample.py under /samples/, sending the site's
content-security policy with every response. Any console error, uncaught exception or CSP
violation fails the test.

It needs no Django and no database; the browser comes from tests/browser/conftest.py.
"""

import re
from collections.abc import Iterator

import numpy as np
import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import READ_CANVAS
from tests.browser.harness import (
    HARNESS_DIR,
    HARNESS_PATH,
    REPO_ROOT,
    VIEWER,
    fresh,
    open_page,
    serve,
    settled,
    viewer_data,
    wait_for_render,
)

pytestmark = pytest.mark.browser

PARTIAL = REPO_ROOT / "templates" / "cases" / "_viewer.html"
SAMPLE_IDS = [f"wadouri:/samples/tp{i}.dcm" for i in range(3)]
FIRST_CELL = f"{VIEWER} .gv-cell:first-child"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("samples")) as url:
        yield url


@pytest.fixture(scope="module")
def harness_page(browser: Browser, base_url: str) -> Iterator[Page]:
    """The harness page with its first timepoints rendered; fails on any browser error."""
    with open_page(browser, base_url + HARNESS_PATH) as page:
        yield page


@pytest.fixture
def page(harness_page: Page) -> Page:
    return fresh(harness_page)


def canvas_grey(page: Page) -> np.ndarray:
    return np.array(page.evaluate(READ_CANVAS, VIEWER), dtype=np.float64)


def settled_viewer_data(page: Page) -> dict[str, str]:
    settled(page)
    return viewer_data(page)


def canvas_centre(page: Page, selector: str = FIRST_CELL) -> tuple[float, float]:
    box = page.locator(f"{selector} canvas").bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def rendered_cells(page: Page) -> list[str]:
    return [cell["rendered"] for cell in settled(page)]


def test_first_timepoints_render_side_by_side(page: Page) -> None:
    grey = canvas_grey(page)
    assert grey.std() > 10, f"canvas looks blank: mean {grey.mean():.1f}, std {grey.std():.1f}"
    data = viewer_data(page)
    assert data["timepoint"] == "0"
    assert data["layout"] == "1x2"  # one series: two timepoints side by side on a wide page
    assert rendered_cells(page) == SAMPLE_IDS[:2]
    # The default window comes from the file's (0028,1050)/(0028,1051).
    assert float(data["windowCenter"]) == 1500
    assert float(data["windowWidth"]) == 3000
    assert "t1 · 2026-01-01" in page.inner_text(f"{FIRST_CELL} .gv-overlay-label")
    assert "WW 3000" in page.inner_text(f"{FIRST_CELL} .gv-overlay-window")
    # No ImageOrientationPatient or PatientOrientation in these files: no markers.
    assert page.inner_text(f"{FIRST_CELL} .gv-marker-left") == ""


def test_wheel_scrolls_every_viewport_together_and_the_pixels_change(page: Page) -> None:
    before = canvas_grey(page)
    page.mouse.move(*canvas_centre(page))
    page.mouse.wheel(0, 100)
    wait_for_render(page, SAMPLE_IDS[1])
    assert rendered_cells(page) == SAMPLE_IDS[:2]  # the window holds the current timepoint
    page.mouse.wheel(0, 100)
    wait_for_render(page, SAMPLE_IDS[2])
    assert rendered_cells(page) == SAMPLE_IDS[1:]  # ... and moves with it
    after = canvas_grey(page)
    # The first viewport went from radius 12 to 24 image pixels: many canvas pixels turn bright.
    assert np.mean(np.abs(after - before) > 50) > 0.01
    assert "t2 · 2026-01-02" in page.inner_text(f"{FIRST_CELL} .gv-overlay-label")

    page.mouse.wheel(0, -100)
    page.mouse.wheel(0, -100)
    wait_for_render(page, SAMPLE_IDS[0])
    assert rendered_cells(page) == SAMPLE_IDS[:2]


def test_slider_and_arrow_keys_change_timepoint(page: Page) -> None:
    page.fill(f"{VIEWER} .gv-slider", "2")
    wait_for_render(page, SAMPLE_IDS[2])
    assert page.inner_text(f"{VIEWER} .gv-position") == "3 / 3"

    page.focus(VIEWER)
    page.keyboard.press("ArrowLeft")
    wait_for_render(page, SAMPLE_IDS[1])
    page.keyboard.press("ArrowRight")
    wait_for_render(page, SAMPLE_IDS[2])


def test_one_timepoint_at_a_time_when_asked(page: Page) -> None:
    page.click(f"{VIEWER} button[title^='Show 1 timepoint']")
    page.wait_for_selector(f'{VIEWER}[data-layout="1x1"]')
    assert rendered_cells(page) == SAMPLE_IDS[:1]
    page.focus(VIEWER)
    page.keyboard.press("ArrowRight")
    wait_for_render(page, SAMPLE_IDS[1])
    assert rendered_cells(page) == SAMPLE_IDS[1:2]


def test_left_drag_changes_window_level_of_every_viewport(page: Page) -> None:
    before = canvas_grey(page)
    x, y = canvas_centre(page)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 40, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "(selector) => document.querySelector(selector).dataset.windowWidth !== '3000'",
        arg=VIEWER,
    )
    data = settled_viewer_data(page)
    assert float(data["windowWidth"]) != 3000
    assert data["rendered"] == SAMPLE_IDS[0]
    assert np.abs(canvas_grey(page) - before).max() > 0
    # The viewport beside it took the same window (same series).
    assert {(c["windowCenter"], c["windowWidth"]) for c in settled(page)} == {
        (data["windowCenter"], data["windowWidth"])
    }

    # The chosen window stays when moving to another timepoint.
    page.click(f"{VIEWER} button[title^='Next timepoint']")
    page.click(f"{VIEWER} button[title^='Next timepoint']")
    wait_for_render(page, SAMPLE_IDS[2])
    assert viewer_data(page)["windowWidth"] == data["windowWidth"]

    page.click(f"{VIEWER} button:text('Reset')")
    page.wait_for_function(
        "(selector) => document.querySelector(selector).dataset.windowWidth === '3000'",
        arg=VIEWER,
    )


def test_ctrl_wheel_zooms_every_viewport_without_changing_timepoint(page: Page) -> None:
    fitted = [float(c["scale"]) for c in settled(page)]
    page.mouse.move(*canvas_centre(page))
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    page.wait_for_function(
        "([selector, scale]) => Number(document.querySelector(selector).dataset.scale) > scale",
        arg=[VIEWER, fitted[0] * 1.05],
    )
    zoomed = [float(c["scale"]) for c in settled(page)]
    assert zoomed == pytest.approx([f * 1.1 for f in fitted])
    assert "Zoom" in page.inner_text(f"{FIRST_CELL} .gv-overlay-zoom")
    assert viewer_data(page)["rendered"] == SAMPLE_IDS[0]


def test_cine_advances_and_pauses(page: Page) -> None:
    page.fill(f"{VIEWER} .gv-fps", "20")
    page.click(f"{VIEWER} button:text('Play')")
    wait_for_render(page, SAMPLE_IDS[1])
    wait_for_render(page, SAMPLE_IDS[2])
    wait_for_render(page, SAMPLE_IDS[0])  # wraps around
    page.click(f"{VIEWER} button:text('Pause')")
    stopped_at = settled_viewer_data(page)["rendered"]
    page.wait_for_timeout(300)  # six frames at 20 fps
    assert viewer_data(page)["rendered"] == stopped_at


def test_image_click_reports_image_pixel_coordinates_and_mm(page: Page) -> None:
    page.evaluate(
        """(selector) => {
          window.__clicks = [];
          GantryViewer.get(document.querySelector(selector)).onImageClick(
            (detail) => window.__clicks.push(detail));
        }""",
        VIEWER,
    )
    second = f"{VIEWER} .gv-cell:nth-child(2)"
    page.mouse.click(*canvas_centre(page, second))
    clicks = page.evaluate("window.__clicks")
    assert len(clicks) == 1
    # The 128x128 image is fitted and centred, so the canvas centre is its centre.
    assert clicks[0]["x"] == pytest.approx(64, abs=1.5)
    assert clicks[0]["y"] == pytest.approx(64, abs=1.5)
    # PixelSpacing 1.0 mm: mm from the image's top left corner equal pixels.
    assert clicks[0]["mm"]["x"] == pytest.approx(clicks[0]["x"])
    assert clicks[0]["mm"]["y"] == pytest.approx(clicks[0]["y"])
    assert clicks[0]["patient"] is None  # no ImagePositionPatient in these files
    # The click was on the second timepoint, which became the active viewport.
    assert clicks[0]["imageId"] == SAMPLE_IDS[1]
    assert clicks[0]["timepoint"] == 1
    assert viewer_data(page)["timepoint"] == "1"
    # A click must not move the window.
    assert float(viewer_data(page)["windowWidth"]) == 3000


def test_harness_loads_the_same_files_as_the_partial() -> None:
    """The harness stands in for templates/cases/_viewer.html; keep their assets in step."""
    partial_assets = re.findall(r"{% static '([^']+)' %}", PARTIAL.read_text())
    assert "js/viewer-geometry.js" in partial_assets
    harness_assets = re.findall(
        r'"\.\./\.\./\.\./static/([^"]+)"', (HARNESS_DIR / "index.html").read_text()
    )
    assert partial_assets == harness_assets
    assert all((REPO_ROOT / "static" / asset).is_file() for asset in partial_assets)
