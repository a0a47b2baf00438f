"""The DICOM viewer (static/js/viewer.js) in headless Chromium, without Django.

A thread serves the repository root (so the harness page loads the real static files) and the
DICOM written by viewer_harness/make_sample.py under /samples/, sending the site's
content-security policy with every response. Any console error, uncaught exception or CSP
violation fails the test.

It needs no Django and no database; the browser comes from tests/browser/conftest.py.
"""

import functools
import importlib.util
import os
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import READ_CANVAS

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
PARTIAL = REPO_ROOT / "templates" / "cases" / "_viewer.html"
HARNESS_DIR = Path(__file__).resolve().parent / "viewer_harness"
HARNESS_PATH = "/tests/browser/viewer_harness/index.html"
SAMPLE_IDS = [f"wadouri:/samples/tp{i}.dcm" for i in range(3)]
CSP = (
    "default-src 'self'; script-src 'self'; worker-src 'self' blob:; "
    "img-src 'self' data: blob:; style-src 'self'; connect-src 'self'"
)
RENDER_TIMEOUT_MS = 15_000
VIEWER = "#gantry-viewer"

# Records securitypolicyviolation events in the page; Playwright injects it outside the CSP.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


def load_make_sample() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample", HARNESS_DIR / "make_sample.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_handler(samples_dir: Path) -> type[SimpleHTTPRequestHandler]:
    class HarnessHandler(SimpleHTTPRequestHandler):
        """Static files from the repository root, /samples/ from `samples_dir`, CSP on all."""

        def translate_path(self, path: str) -> str:
            if path.startswith("/samples/"):
                return str(samples_dir / os.path.basename(path.split("?")[0]))
            return super().translate_path(path)

        def end_headers(self) -> None:
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

        def log_message(self, fmt: str, *args: object) -> None:
            pass

    return HarnessHandler


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    samples_dir = tmp_path_factory.mktemp("samples")
    load_make_sample().write_samples(samples_dir)
    handler = functools.partial(make_handler(samples_dir), directory=str(REPO_ROOT))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    """The harness page with its first timepoint rendered; fails on any browser error."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url')})")

    context.on("console", on_console)
    context.on("weberror", lambda web_error: errors.append(f"uncaught: {web_error.error}"))
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    page = context.new_page()
    page.goto(base_url + HARNESS_PATH)
    try:
        wait_for_render(page, SAMPLE_IDS[0])
    except PlaywrightTimeoutError:
        context.close()
        pytest.fail("the first image never rendered; browser errors:\n" + "\n".join(errors))
    yield page
    errors.extend(f"CSP: {v}" for v in page.evaluate("window.__cspViolations"))
    context.close()
    for error in errors:
        print(error)
    assert not errors, "browser reported errors:\n" + "\n".join(errors)


def wait_for_render(page: Page, image_id: str) -> None:
    page.wait_for_function(
        "([selector, id]) => document.querySelector(selector).dataset.rendered === id",
        arg=[VIEWER, image_id],
        timeout=RENDER_TIMEOUT_MS,
    )


def canvas_grey(page: Page) -> np.ndarray:
    return np.array(page.evaluate(READ_CANVAS, VIEWER), dtype=np.float64)


def viewer_data(page: Page) -> dict[str, str]:
    return page.eval_on_selector(VIEWER, "(root) => ({...root.dataset})")


def settled_viewer_data(page: Page) -> dict[str, str]:
    """The viewer's data once rendering has caught up with the input sent so far.

    Chromium delivers mouse moves aligned to animation frames and cornerstone renders (and
    the viewer updates its data) on a later frame, so a read right after a drag can see
    an intermediate window: read until two reads a few frames apart agree.
    """
    data = viewer_data(page)
    for _ in range(20):
        page.evaluate(
            "() => new Promise((done) => requestAnimationFrame(() => "
            "requestAnimationFrame(() => requestAnimationFrame(done))))"
        )
        again = viewer_data(page)
        if again == data:
            return data
        data = again
    raise AssertionError("the viewer kept re-rendering")


def canvas_centre(page: Page) -> tuple[float, float]:
    box = page.locator(f"{VIEWER} canvas").bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_first_timepoint_renders_a_non_blank_image(page: Page) -> None:
    grey = canvas_grey(page)
    assert grey.std() > 10, f"canvas looks blank: mean {grey.mean():.1f}, std {grey.std():.1f}"
    data = viewer_data(page)
    assert data["timepoint"] == "0"
    # The default window comes from the file's (0028,1050)/(0028,1051).
    assert float(data["windowCenter"]) == 1500
    assert float(data["windowWidth"]) == 3000
    assert "t1 · 2026-01-01" in page.inner_text(f"{VIEWER} .gv-overlay-label")
    assert "WW 3000" in page.inner_text(f"{VIEWER} .gv-overlay-window")


def test_wheel_scrolls_to_the_next_timepoint_and_the_pixels_change(page: Page) -> None:
    before = canvas_grey(page)
    page.mouse.move(*canvas_centre(page))
    page.mouse.wheel(0, 100)
    wait_for_render(page, SAMPLE_IDS[1])
    after = canvas_grey(page)
    # The disc grows from radius 12 to 24 image pixels: many canvas pixels turn bright.
    assert np.mean(np.abs(after - before) > 50) > 0.01
    assert "t2 · 2026-01-02" in page.inner_text(f"{VIEWER} .gv-overlay-label")

    page.mouse.wheel(0, -100)
    wait_for_render(page, SAMPLE_IDS[0])


def test_slider_and_arrow_keys_change_timepoint(page: Page) -> None:
    page.fill(f"{VIEWER} .gv-slider", "2")
    wait_for_render(page, SAMPLE_IDS[2])
    assert page.inner_text(f"{VIEWER} .gv-position") == "3 / 3"

    page.focus(VIEWER)
    page.keyboard.press("ArrowLeft")
    wait_for_render(page, SAMPLE_IDS[1])
    page.keyboard.press("ArrowRight")
    wait_for_render(page, SAMPLE_IDS[2])


def test_left_drag_changes_window_level(page: Page) -> None:
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

    # The chosen window stays when moving to another timepoint.
    page.click(f"{VIEWER} button[title^='Next timepoint']")
    wait_for_render(page, SAMPLE_IDS[1])
    assert viewer_data(page)["windowWidth"] == data["windowWidth"]

    page.click(f"{VIEWER} button:text('Reset')")
    page.wait_for_function(
        "(selector) => document.querySelector(selector).dataset.windowWidth === '3000'",
        arg=VIEWER,
    )


def test_ctrl_wheel_zooms_without_changing_timepoint(page: Page) -> None:
    fitted_scale = float(viewer_data(page)["scale"])
    page.mouse.move(*canvas_centre(page))
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    page.wait_for_function(
        "([selector, scale]) => Number(document.querySelector(selector).dataset.scale) > scale",
        arg=[VIEWER, fitted_scale * 1.05],
    )
    assert "Zoom" in page.inner_text(f"{VIEWER} .gv-overlay-zoom")
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


def test_image_click_reports_image_pixel_coordinates(page: Page) -> None:
    page.evaluate(
        """(selector) => {
          window.__clicks = [];
          GantryViewer.get(document.querySelector(selector)).onImageClick(
            (detail) => window.__clicks.push(detail));
        }""",
        VIEWER,
    )
    page.mouse.click(*canvas_centre(page))
    clicks = page.evaluate("window.__clicks")
    assert len(clicks) == 1
    # The 128x128 image is fitted and centred, so the canvas centre is its centre.
    assert clicks[0]["x"] == pytest.approx(64, abs=1.5)
    assert clicks[0]["y"] == pytest.approx(64, abs=1.5)
    assert clicks[0]["imageId"] == SAMPLE_IDS[0]
    assert clicks[0]["timepoint"] == 0
    # A click must not move the window.
    assert float(viewer_data(page)["windowWidth"]) == 3000


def test_harness_loads_the_same_files_as_the_partial() -> None:
    """The harness stands in for templates/cases/_viewer.html; keep their assets in step."""
    partial_assets = re.findall(r"{% static '([^']+)' %}", PARTIAL.read_text())
    harness_assets = re.findall(
        r'"\.\./\.\./\.\./static/([^"]+)"', (HARNESS_DIR / "index.html").read_text()
    )
    assert partial_assets == harness_assets
    assert all((REPO_ROOT / "static" / asset).is_file() for asset in partial_assets)
