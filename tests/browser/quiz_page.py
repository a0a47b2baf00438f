"""What browser tests do on a quiz or practice page: log in, step the viewer to an image,
click an image pixel."""

from __future__ import annotations

import numpy as np

from edu import keys
from tests.factories import PASSWORD

# Pixel (x, y) of an image point -> page coordinates, through Cornerstone's own transform, in
# the viewport `cell` (a selector) or the active one.
PIXEL_TO_PAGE = """
([x, y, cell]) => {
  const root = document.getElementById('gantry-viewer');
  const element = cell ? document.querySelector(`${cell} .gv-image`) :
    window.GantryViewer.get(root).element;
  const canvas = cornerstone.pixelToCanvas(element, {x, y});
  const rect = element.getBoundingClientRect();
  return [rect.left + canvas.x, rect.top + canvas.y];
}
"""


def logged_in_page(browser, live_server, user, errors):
    """A new browser context logged in as ``user``; page errors are appended to ``errors``."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.on("weberror", lambda e: errors.append(str(e.error)))
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    return context, page


def show_largest_lesion(page, images) -> np.ndarray:
    """Step the viewer (arrow keys) to the shown image with the largest lesion; its mask."""
    areas = [int(lesion.mask.sum()) if (lesion := keys.lesion_of(i)) else 0 for i in images]
    target = int(np.argmax(areas))
    page.focus("#gantry-viewer")
    for _ in range(target):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "t => document.querySelector('#gantry-viewer').dataset.timepoint === String(t)",
        arg=target,
    )
    return keys.lesion_of(images[target]).mask


def nearest_to_centroid(mask: np.ndarray) -> tuple[float, float]:
    """The centre (x, y) of the mask pixel nearest the mask's centroid."""
    rows, cols = np.nonzero(mask)
    nearest = np.argmin(np.hypot(rows - rows.mean(), cols - cols.mean()))
    return float(cols[nearest]) + 0.5, float(rows[nearest]) + 0.5


def click_image_point(page, x: float, y: float, cell: str | None = None) -> None:
    """Click image point (x, y) in the viewport ``cell`` (a selector of a ``.gv-cell``; the
    active one by default) and wait until the mark is set."""
    px, py = page.evaluate(PIXEL_TO_PAGE, [x, y, cell])
    page.mouse.click(px, py)
    page.wait_for_selector("#gantry-viewer[data-marked]")


def click_lesion_on_flair(page, images) -> None:
    """Step to the shown study with the largest lesion and click the mask pixel nearest its
    centroid on that study's FLAIR; the viewer must then be on the FLAIR."""
    mask = show_largest_lesion(page, images)
    target = page.get_attribute("#gantry-viewer", "data-timepoint")
    flair = f".gv-cell[data-study='{target}'][data-series='FLAIR']"
    page.wait_for_selector(f"{flair}[data-rendered]")
    click_image_point(page, *nearest_to_centroid(mask), cell=flair)
    assert page.get_attribute("#gantry-viewer", "data-series") == "FLAIR"
