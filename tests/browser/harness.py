"""Serving and driving the viewer harness (tests/browser/viewer_harness/) without Django.

A thread serves the repository root (so the harness pages load the real static files), the
DICOM written by viewer_harness/make_sample.py under /samples/, and one page per scenario
(`scenario_url`), sending the site's content-security policy with every response. `open_page`
opens a page and fails the test on any console error, uncaught exception or CSP violation.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import importlib.util
import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import numpy as np
from playwright.sync_api import Browser, ConsoleMessage, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
HARNESS_DIR = Path(__file__).resolve().parent / "viewer_harness"
HARNESS_URL_DIR = "/tests/browser/viewer_harness/"
HARNESS_PATH = HARNESS_URL_DIR + "index.html"
CSP = (
    "default-src 'self'; script-src 'self'; worker-src 'self' blob:; "
    "img-src 'self' data: blob:; style-src 'self'; connect-src 'self'"
)
RENDER_TIMEOUT_MS = 15_000
VIEWER = "#gantry-viewer"
VIEWER_DATA_BLOCK = re.compile(
    r'(<script id="viewer-data" type="application/json">)(.*?)(</script>)'
)

# Records securitypolicyviolation events in the page; Playwright injects it outside the CSP.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""

# One viewport's canvas as base64 RGBA bytes (a list of numbers would take Playwright seconds).
READ_CELL_CANVAS = """
(cell) => {
  const canvas = cell.querySelector('canvas');
  const rgba = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let text = '';
  for (let i = 0; i < rgba.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, rgba.subarray(i, i + 0x8000));
  }
  return {width: canvas.width, height: canvas.height, rgba: btoa(text)};
}
"""


def load_make_sample() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample", HARNESS_DIR / "make_sample.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scenario_page(data: dict) -> str:
    """The harness page with `data` as its viewer data."""
    page = (HARNESS_DIR / "index.html").read_text()
    payload = json.dumps(data).replace("<", "\\u003c")
    return VIEWER_DATA_BLOCK.sub(lambda m: m.group(1) + payload + m.group(3), page)


def make_handler(samples_dir: Path) -> type[SimpleHTTPRequestHandler]:
    class HarnessHandler(SimpleHTTPRequestHandler):
        """Static files from the repository root, /samples/ and scenario pages from
        `samples_dir`, CSP on all."""

        def translate_path(self, path: str) -> str:
            name = os.path.basename(path.split("?")[0])
            if path.startswith("/samples/"):
                return str(samples_dir / name)
            if path.startswith(HARNESS_URL_DIR + "scenario-"):
                return str(samples_dir / name)
            return super().translate_path(path)

        def end_headers(self) -> None:
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

        def log_message(self, fmt: str, *args: object) -> None:
            pass

    return HarnessHandler


@contextlib.contextmanager
def serve(samples_dir: Path, pages: dict[str, dict] | None = None) -> Iterator[str]:
    """Write the samples and scenario pages (those of make_sample.py, and `pages`: viewer
    data by name) into `samples_dir`; serve; yield the base URL."""
    make_sample = load_make_sample()
    make_sample.write_samples(samples_dir)
    scenarios = make_sample.write_scenarios(samples_dir) | (pages or {})
    for name, data in scenarios.items():
        (samples_dir / f"scenario-{name}.html").write_text(scenario_page(data))
    handler = functools.partial(make_handler(samples_dir), directory=str(REPO_ROOT))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def scenario_url(base_url: str, name: str) -> str:
    return f"{base_url}{HARNESS_URL_DIR}scenario-{name}.html"


@contextlib.contextmanager
def open_page(
    browser: Browser, url: str, *, width: int = 1000, height: int = 800, touch: bool = False
) -> Iterator[Page]:
    """`url` in a fresh context, once the viewer has rendered; fails on any browser error."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, has_touch=touch, is_mobile=touch
    )
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url')})")

    context.on("console", on_console)
    context.on("weberror", lambda web_error: errors.append(f"uncaught: {web_error.error}"))
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector(f"{VIEWER}[data-rendered]", timeout=RENDER_TIMEOUT_MS)
        wait_until_cells_rendered(page)
        yield page
        errors.extend(f"CSP: {v}" for v in page.evaluate("window.__cspViolations"))
    finally:
        context.close()
    assert not errors, "browser reported errors:\n" + "\n".join(errors)


def fresh(page: Page) -> Page:
    """The page's viewer as it starts on a wide page: every series, two timepoints, the first
    one current, nothing measured or moved. One page per module saves loading it per test."""
    page.evaluate(
        """(selector) => {
             const viewer = GantryViewer.get(document.querySelector(selector));
             viewer.reset();
             viewer.clearLengths();
             viewer.pause();
             viewer.setTool('Wwwc');
             viewer.setLayout({series: 'all', timepoints: 2});
             return viewer.showTimepoint(0);
           }""",
        VIEWER,
    )
    settled(page)
    return page


def wait_for_render(page: Page, image_id: str) -> None:
    page.wait_for_function(
        "([selector, id]) => document.querySelector(selector).dataset.rendered === id",
        arg=[VIEWER, image_id],
        timeout=RENDER_TIMEOUT_MS,
    )


def wait_until_cells_rendered(page: Page) -> None:
    """Every viewport that has an image for its study and series has drawn it."""
    page.wait_for_function(
        """(selector) => Array.from(document.querySelectorAll(selector + ' .gv-cell'))
             .every((cell) => cell.classList.contains('gv-missing') || cell.dataset.rendered)""",
        arg=VIEWER,
        timeout=RENDER_TIMEOUT_MS,
    )


def call(page: Page, method: str, *args: object) -> object:
    """Call a method of the page's viewer (docs/viewer.md) and return its (awaited) result."""
    return page.evaluate(
        "([selector, method, args]) => "
        "GantryViewer.get(document.querySelector(selector))[method](...args)",
        [VIEWER, method, list(args)],
    )


def viewer_data(page: Page) -> dict[str, str]:
    return page.eval_on_selector(VIEWER, "(root) => ({...root.dataset})")


def cells(page: Page) -> list[dict[str, str]]:
    """Each viewport's data attributes, row by row."""
    return page.eval_on_selector_all(
        f"{VIEWER} .gv-cell", "(cells) => cells.map((c) => ({...c.dataset}))"
    )


def next_frames(page: Page, frames: int = 3) -> None:
    page.evaluate(
        """(n) => new Promise((done) => {
             const tick = (left) => (left ? requestAnimationFrame(() => tick(left - 1)) : done());
             tick(n);
           })""",
        frames,
    )


def settled(page: Page) -> list[dict[str, str]]:
    """The viewports' data once rendering has caught up with the input sent so far.

    Chromium delivers input aligned to animation frames and Cornerstone renders (and the
    viewer updates its data) on a later frame, so a read right after a gesture can see an
    intermediate state: read until two reads a few frames apart agree.
    """
    data = [viewer_data(page), *cells(page)]
    for _ in range(20):
        next_frames(page)
        again = [viewer_data(page), *cells(page)]
        if again == data:
            return data[1:]
        data = again
    raise AssertionError("the viewer kept re-rendering")


def cell_selector(study: int, series: str) -> str:
    return f'{VIEWER} .gv-cell[data-study="{study}"][data-series="{series}"]'


def cell_rgb(page: Page, selector: str) -> np.ndarray:
    """One viewport's canvas as an array [height, width, 3]."""
    shot = page.eval_on_selector(selector, READ_CELL_CANVAS)
    rgba = np.frombuffer(base64.b64decode(shot["rgba"]), dtype=np.uint8)
    rgba = rgba.reshape(shot["height"], shot["width"], 4)
    return rgba[:, :, :3].astype(np.float64)


def image_to_page(page: Page, selector: str, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel point (x, y) in a viewport, by Cornerstone's transform."""
    return tuple(
        page.eval_on_selector(
            selector,
            """(cell, [x, y]) => {
                 const element = cell.querySelector('.gv-image');
                 const canvas = cornerstone.pixelToCanvas(element, {x, y});
                 const rect = element.getBoundingClientRect();
                 return [rect.left + canvas.x, rect.top + canvas.y];
               }""",
            [x, y],
        )
    )
