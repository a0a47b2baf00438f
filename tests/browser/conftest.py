"""Headless Chromium (Debian's) through Playwright, shared by the browser tests.

Without /usr/bin/chromium the browser tests are skipped, unless GANTRY_REQUIRE_BROWSER=1
(as in CI), which turns the absence into a failure.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Grey levels of the viewer canvas (red channel; the image is greyscale) on a 4-pixel grid.
READ_CANVAS = """
(selector) => {
  const canvas = document.querySelector(selector + ' canvas');
  const rgba = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const grey = [];
  for (let y = 0; y < canvas.height; y += 4) {
    for (let x = 0; x < canvas.width; x += 4) grey.push(rgba[4 * (y * canvas.width + x)]);
  }
  return grey;
}
"""


# How the live server's ThreadingMixIn names the thread that answers one request.
REQUEST_THREAD = "(process_request_thread)"
REQUEST_WAIT_S = 30  # in all: a test that failed may leave a page open


def pytest_collection_modifyitems(config, items) -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("GANTRY_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"{CHROMIUM} is absent and GANTRY_REQUIRE_BROWSER=1")
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is absent (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django's ORM (test setup and
    # teardown, still synchronous) would otherwise refuse to run beside it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item) -> None:
    """Before any fixture is torn down, let the live server finish the requests it is still
    answering. A viewer goes on fetching images after a test's last step; such a request
    would otherwise query tables while the test database is flushed (the two can deadlock,
    and the flush fails) or open files after MEDIA_ROOT is restored."""
    if "live_server" not in getattr(item, "fixturenames", ()):
        return
    deadline = time.monotonic() + REQUEST_WAIT_S
    for thread in threading.enumerate():
        if thread.name.endswith(REQUEST_THREAD):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
