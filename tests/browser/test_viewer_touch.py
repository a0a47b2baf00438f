"""The viewer on a phone (390x844) and a tablet (1024x1366) with touch, in headless Chromium
without Django: the layout fits the screen; a tap is a click, a slow drag sets window/level,
a flick steps through timepoints, a pinch zooms about the fingers."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.harness import (
    VIEWER,
    open_page,
    scenario_url,
    serve,
    settled,
    viewer_data,
)
from tests.browser.touch import TouchScreen

pytestmark = pytest.mark.browser

ACTIVE = f"{VIEWER} .gv-cell.gv-active"
SCREENS = {"phone": (390, 844, "1x1"), "tablet": (1024, 1366, "2x3")}
RECORD_CLICKS = """
(selector) => {
  window.__clicks = [];
  GantryViewer.get(document.querySelector(selector)).onImageClick((d) => window.__clicks.push(d));
}
"""
# Image pixel under a page point, in the active viewport.
PAGE_TO_PIXEL = """
([selector, x, y]) => {
  const element = document.querySelector(selector + ' .gv-image');
  return cornerstone.pageToPixel(element, x + window.scrollX, y + window.scrollY);
}
"""


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("samples")) as url:
        yield url


def centre_of(page: Page, selector: str) -> tuple[float, float]:
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(f"{selector} canvas").bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


@pytest.mark.parametrize("screen", SCREENS)
def test_touch_gestures_on_a_phone_and_a_tablet(
    browser: Browser, base_url: str, screen: str
) -> None:
    width, height, layout = SCREENS[screen]
    url = scenario_url(base_url, "brain")
    with open_page(browser, url, width=width, height=height, touch=True) as page:
        touch = TouchScreen(page)
        assert viewer_data(page)["layout"] == layout
        # Nothing wider than the screen; the whole viewer fits its height.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        viewer_box = page.locator(VIEWER).bounding_box()
        assert viewer_box["width"] <= width
        assert viewer_box["height"] <= height
        buttons = page.locator(f"{VIEWER} .gv-button").all()
        assert min(b.bounding_box()["height"] for b in buttons) >= 32  # big enough to tap

        page.evaluate(RECORD_CLICKS, VIEWER)
        centre = centre_of(page, ACTIVE)
        touch.tap(centre)
        clicks = page.evaluate("window.__clicks")
        assert len(clicks) == 1
        assert (clicks[0]["x"], clicks[0]["y"]) == pytest.approx((128, 128), abs=2)
        assert clicks[0]["mm"]["x"] == pytest.approx(clicks[0]["x"] * 0.9375)

        # A slow drag sets window/level; nothing else moves.
        touch.drag(centre, (centre[0] + 40, centre[1] + 60))
        dragged = viewer_data(page)
        assert (dragged["windowCenter"], dragged["windowWidth"]) != ("600", "1200")
        assert dragged["timepoint"] == "0"

        # A flick to the left shows the next timepoint and leaves the window as it was.
        touch.flick((centre[0] + 60, centre[1]), -140)
        page.wait_for_selector(f'{VIEWER}[data-timepoint="1"]')
        after_flick = viewer_data(page)
        assert after_flick["rendered"] == "wadouri:/samples/brain-t1-1.dcm"
        assert (after_flick["windowCenter"], after_flick["windowWidth"]) == (
            dragged["windowCenter"],
            dragged["windowWidth"],
        )
        assert page.evaluate("window.__clicks.length") == 1  # neither gesture was a click

        # A pinch zooms about the point between the fingers, in every viewport alike.
        centre = centre_of(page, ACTIVE)
        off_centre = (centre[0] - 30, centre[1] + 20)
        fitted = [float(c["scale"]) for c in settled(page) if "scale" in c]
        under_fingers = page.evaluate(PAGE_TO_PIXEL, [ACTIVE, *off_centre])
        touch.pinch(off_centre, 60, 150)
        zoomed = [float(c["scale"]) for c in settled(page) if "scale" in c]
        assert zoomed == pytest.approx([f * 2.5 for f in fitted], rel=0.02)
        still_under = page.evaluate(PAGE_TO_PIXEL, [ACTIVE, *off_centre])
        assert (still_under["x"], still_under["y"]) == pytest.approx(
            (under_fingers["x"], under_fingers["y"]), abs=1.5
        )
        assert viewer_data(page)["windowWidth"] == dragged["windowWidth"]  # a pinch is not a drag

        # A flick to the right goes back.
        touch.flick((centre[0] - 60, centre[1]), 140)
        page.wait_for_selector(f'{VIEWER}[data-timepoint="0"]')
