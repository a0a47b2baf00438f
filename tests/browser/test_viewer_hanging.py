"""The viewer's hanging layout and geometry in headless Chromium, without Django: several
series per study, orientation markers, the length tool, fitting, overlays, bad data.

The DICOM comes from viewer_harness/make_sample.py ("brain": two timepoints of T1, T2-FLAIR
and T1c; "geometry": series that differ in orientation and spacing).
"""

from collections.abc import Iterator

import numpy as np
import pytest
from playwright.sync_api import Browser, Page

from tests.browser.harness import (
    VIEWER,
    call,
    cell_rgb,
    cell_selector,
    cells,
    fresh,
    image_to_page,
    load_make_sample,
    open_page,
    scenario_url,
    serve,
    settled,
    viewer_data,
)

pytestmark = pytest.mark.browser

SAMPLE = load_make_sample()
BAD_PAGES = {
    "no-images": {"studies": [{"label": "t1", "series": [{"key": "1", "imageIds": []}]}]},
    "missing-file": {
        "studies": [
            {
                "label": "t1",
                "series": [
                    {"key": "1", "label": "T1", "imageIds": ["wadouri:/samples/brain-t0-1.dcm"]},
                    {"key": "2", "label": "gone", "imageIds": ["wadouri:/samples/absent.dcm"]},
                ],
            }
        ]
    },
}
# The patient direction at the left, right, top and bottom edge of each geometry series, worked
# out by hand from its header (patient coordinates: +x left, +y posterior, +z head).
EXPECTED_MARKERS = {
    "axial-flipped": "L,R,A,P",  # rows run towards the patient's right
    "sagittal": "A,P,S,I",  # rows run posterior, columns down to the feet
    "coronal": "R,L,S,I",
    "oblique": "RA,LP,AL,PR",  # rows 30 degrees from left towards posterior
    "anisotropic": "R,L,A,P",
    "dx": "R,L,S,I",  # PatientOrientation L\F: a PA chest as it is read
    "no-spacing": "R,L,A,P",
    "small": "R,L,A,P",
}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("samples"), BAD_PAGES) as url:
        yield url


@pytest.fixture(scope="module")
def brain_page(browser: Browser, base_url: str) -> Iterator[Page]:
    with open_page(browser, scenario_url(base_url, "brain"), height=900) as page:
        yield page


@pytest.fixture(scope="module")
def geometry_page(browser: Browser, base_url: str) -> Iterator[Page]:
    with open_page(browser, scenario_url(base_url, "geometry"), height=900) as page:
        yield page


@pytest.fixture
def brain(brain_page: Page) -> Page:
    return fresh(brain_page)


@pytest.fixture
def geometry(geometry_page: Page) -> Page:
    return fresh(geometry_page)


def show_only(page: Page, series: str) -> None:
    call(page, "setLayout", {"series": series, "timepoints": 1})
    page.wait_for_selector(f'{VIEWER}[data-layout="1x1"][data-series="{series}"]')
    settled(page)


def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()


def is_yellow(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] > 200) & (rgb[..., 1] > 170) & (rgb[..., 2] < 120)


def test_contrasts_across_and_timepoints_down_with_a_missing_series_said(brain: Page) -> None:
    assert viewer_data(brain)["layout"] == "2x3"
    shown = [(c["study"], c["series"], c.get("rendered")) for c in cells(brain)]
    assert shown == [
        ("0", "1", "wadouri:/samples/brain-t0-1.dcm"),
        ("0", "2", "wadouri:/samples/brain-t0-2.dcm"),
        ("0", "3", None),
        ("1", "1", "wadouri:/samples/brain-t1-1.dcm"),
        ("1", "2", "wadouri:/samples/brain-t1-2.dcm"),
        ("1", "3", "wadouri:/samples/brain-t1-3.dcm"),
    ]
    assert brain.inner_text(cell_selector(0, "3")).count("No T1c at this timepoint") == 1
    assert "t2 · T2-FLAIR" in brain.inner_text(f"{cell_selector(1, '2')} .gv-overlay-label")

    # One series: its timepoints side by side; then one viewport that scrolls.
    brain.click(f"{VIEWER} button:text-is('T2-FLAIR')")
    brain.wait_for_selector(f'{VIEWER}[data-layout="1x2"]')
    assert [(c["study"], c["series"]) for c in settled(brain)] == [("0", "2"), ("1", "2")]
    brain.click(f"{VIEWER} button[title^='Show 1 timepoint']")
    brain.wait_for_selector(f'{VIEWER}[data-layout="1x1"]')
    brain.focus(VIEWER)
    brain.keyboard.press("ArrowRight")
    brain.wait_for_selector(f'{VIEWER} .gv-cell[data-rendered="wadouri:/samples/brain-t1-2.dcm"]')
    # Every series at one timepoint scrolls together.
    brain.click(f"{VIEWER} button:text-is('All series')")
    brain.wait_for_selector(f'{VIEWER}[data-layout="1x3"]')
    brain.keyboard.press("ArrowLeft")
    brain.wait_for_selector(f'{VIEWER} .gv-cell[data-rendered="wadouri:/samples/brain-t0-2.dcm"]')
    assert [(c["study"], c["series"]) for c in settled(brain)] == [
        ("0", "1"),
        ("0", "2"),
        ("0", "3"),
    ]


def test_window_level_follows_within_a_series_not_across_series(brain: Page) -> None:
    box = brain.locator(f"{cell_selector(0, '1')} canvas").bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    drag(brain, centre, (centre[0] + 50, centre[1] - 30))
    windows = {
        (c["study"], c["series"]): (c.get("windowCenter"), c.get("windowWidth"))
        for c in settled(brain)
    }
    t1 = windows[("0", "1")]
    assert t1 != ("600", "1200")
    assert windows[("1", "1")] == t1
    assert windows[("0", "2")] == windows[("1", "2")] == ("900", "1800")
    assert windows[("1", "3")] == ("1200", "2400")


def test_patients_left_is_drawn_on_the_viewers_right_for_an_axial_image(brain: Page) -> None:
    selector = cell_selector(1, "1")
    assert brain.get_attribute(selector, "data-markers") == "R,L,A,P"
    rgb = cell_rgb(brain, selector)
    # The blob (image column 190 of 256, the patient's left) is the brightest thing drawn.
    columns = np.nonzero(rgb[..., 0] > 250)[1]
    assert columns.mean() > 0.6 * rgb.shape[1]
    page_x, _ = image_to_page(brain, selector, SAMPLE.BRAIN_BLOB_COLUMN, SAMPLE.BRAIN_BLOB_ROW)
    left_marker = brain.locator(f"{selector} .gv-marker-left").bounding_box()
    right_marker = brain.locator(f"{selector} .gv-marker-right").bounding_box()
    assert brain.inner_text(f"{selector} .gv-marker-right") == "L"
    assert brain.inner_text(f"{selector} .gv-marker-left") == "R"
    assert left_marker["x"] < page_x < right_marker["x"]
    assert page_x - left_marker["x"] > right_marker["x"] - page_x  # nearer the "L"


def test_markers_of_every_geometry(geometry: Page) -> None:
    markers = {c["series"]: c["markers"] for c in cells(geometry)}
    assert markers == EXPECTED_MARKERS
    selector = cell_selector(0, "oblique")
    sides = [
        geometry.inner_text(f"{selector} .gv-marker-{s}")
        for s in ("left", "right", "top", "bottom")
    ]
    assert ",".join(sides) == EXPECTED_MARKERS["oblique"]


@pytest.mark.parametrize(
    ("series", "spacing", "source"),
    [
        ("anisotropic", (0.5, 2.0), "PixelSpacing"),
        ("dx", (0.7, 0.7), "ImagerPixelSpacing"),
        ("no-spacing", None, None),
    ],
)
def test_length_tool_measures_mm_from_the_spacing_the_file_gives(
    geometry: Page, series: str, spacing: tuple[float, float] | None, source: str | None
) -> None:
    show_only(geometry, series)
    geometry.click(f"{VIEWER} button:text-is('Length')")
    selector = cell_selector(0, series)
    start, end = (20.0, 30.0), (60.0, 60.0)
    drag(
        geometry, image_to_page(geometry, selector, *start), image_to_page(geometry, selector, *end)
    )
    [length] = call(geometry, "measurements")
    dx, dy = length["end"]["x"] - length["start"]["x"], length["end"]["y"] - length["start"]["y"]
    assert (dx, dy) == pytest.approx((40, 30), abs=0.2)
    assert length["spacingSource"] == source
    assert length["lengthPixels"] == pytest.approx(np.hypot(dx, dy))
    if spacing is None:
        assert length["lengthMm"] is None
    else:
        # Along a row (dx, across columns) the column spacing counts: PixelSpacing's 2nd value.
        row_mm, column_mm = spacing
        assert length["lengthMm"] == pytest.approx(np.hypot(dx * column_mm, dy * row_mm), rel=1e-9)
        assert float(viewer_data(geometry)["lengthMm"]) == pytest.approx(
            length["lengthMm"], abs=1e-3
        )
    geometry.click(f"{VIEWER} button:text-is('Clear')")
    assert call(geometry, "measurements") == []


def test_images_fit_their_viewport_but_a_small_one_is_not_blown_up(geometry: Page) -> None:
    selector = cell_selector(0, "no-spacing")  # 128 x 128, square pixels, in a narrow viewport
    canvas = geometry.locator(f"{selector} canvas").bounding_box()
    scale = float(geometry.get_attribute(selector, "data-scale"))
    assert scale < 4
    assert scale == pytest.approx(min(canvas["width"], canvas["height"]) / 128, rel=0.01)
    show_only(geometry, "small")  # 64 x 64 alone would fit at about 10x: 4x at most
    canvas = geometry.locator(f"{VIEWER} canvas").bounding_box()
    assert min(canvas["width"], canvas["height"]) / 64 > 8
    assert float(viewer_data(geometry)["scale"]) == 4


def test_overlays_are_drawn_on_the_images_they_name(brain: Page) -> None:
    rows, columns = np.mgrid[0 : SAMPLE.BRAIN_SIZE, 0 : SAMPLE.BRAIN_SIZE]
    radius = SAMPLE.BRAIN_BLOB_RADII[1]
    blob = (rows - SAMPLE.BRAIN_BLOB_ROW) ** 2 + (
        columns - SAMPLE.BRAIN_BLOB_COLUMN
    ) ** 2 <= radius**2
    flat = np.flatnonzero(blob)
    starts = np.flatnonzero(np.diff(np.concatenate([[-2], flat])) != 1)
    ends = np.append(starts[1:], len(flat))
    runs = np.column_stack([flat[starts], ends - starts]).ravel().tolist()
    spec = {
        "study": 1,
        "series": "1",
        "shapes": [{"type": "mask", "rows": 256, "columns": 256, "runs": runs}],
    }
    before = {
        key: is_yellow(cell_rgb(brain, cell_selector(*key))).sum()
        for key in [(1, "1"), (0, "1"), (1, "2")]
    }
    call(brain, "setOverlay", "lesion", spec)
    settled(brain)
    target = is_yellow(cell_rgb(brain, cell_selector(1, "1")))
    assert target.sum() > 100 + before[(1, "1")]
    # The outline runs along the blob's edge: its drawn pixels lie about `radius` from the centre.
    centre = image_to_page(
        brain, cell_selector(1, "1"), SAMPLE.BRAIN_BLOB_COLUMN + 0.5, SAMPLE.BRAIN_BLOB_ROW + 0.5
    )
    box = brain.locator(f"{cell_selector(1, '1')} canvas").bounding_box()
    ys, xs = np.nonzero(target)
    distance = np.hypot(xs + 0.5 - (centre[0] - box["x"]), ys + 0.5 - (centre[1] - box["y"]))
    scale = float(brain.get_attribute(cell_selector(1, "1"), "data-scale"))
    assert np.median(distance) == pytest.approx((radius + 0.5) * scale, rel=0.1)
    for key in [(0, "1"), (1, "2")]:
        assert is_yellow(cell_rgb(brain, cell_selector(*key))).sum() == before[key]
    call(brain, "clearOverlay", "lesion")
    settled(brain)
    assert is_yellow(cell_rgb(brain, cell_selector(1, "1"))).sum() == before[(1, "1")]


def test_geometry_helpers_reject_what_they_cannot_read(geometry: Page) -> None:
    results = geometry.evaluate(
        """() => {
             const g = window.GantryViewerGeometry;
             return {
               spacingText: g.pixelSpacing(
                 {pixelSpacing: 'a\\\\b', imagerPixelSpacing: '0.2\\\\0.3'}),
               spacingZero: g.pixelSpacing({pixelSpacing: '0\\\\1'}),
               orientationShort: g.orientationMarkers({imageOrientationPatient: '1\\\\0\\\\0'}),
               orientationBadLetters: g.orientationMarkers({patientOrientation: 'X\\\\F'}),
               slightlyOblique: g.directionLetters([0.98, 0.17, 0]),
               windows: [[0, 2, 5, 0], [3, 2, 5, 0], [4, 2, 5, 0], [1, 2, 5, 3], [0, 1, 1, 0]]
                 .map(([c, s, n, f]) => g.windowStart(c, s, n, f)),
             };
           }"""
    )
    assert results["spacingText"] == {"row": 0.2, "column": 0.3, "source": "ImagerPixelSpacing"}
    assert results["spacingZero"] is None
    assert results["orientationShort"] is None
    assert results["orientationBadLetters"] is None
    assert results["slightlyOblique"] == "L"
    assert results["windows"] == [0, 2, 3, 1, 0]


def test_bad_viewer_data_and_a_missing_file_are_said_on_the_page(
    browser: Browser, base_url: str
) -> None:
    context = browser.new_context()
    errors: list[str] = []
    context.on("weberror", lambda web_error: errors.append(str(web_error.error)))
    page = context.new_page()
    page.goto(scenario_url(base_url, "no-images"))
    page.wait_for_selector(f"{VIEWER}[data-error]")
    assert "series 0 of study 0 has no imageIds" in page.inner_text(VIEWER)

    page.goto(scenario_url(base_url, "missing-file"))
    page.wait_for_selector(f"{VIEWER} .gv-cell[data-error]")
    assert "HTTP 404" in page.inner_text(cell_selector(0, "2"))
    page.wait_for_selector(
        f'{cell_selector(0, "1")}[data-rendered="wadouri:/samples/brain-t0-1.dcm"]'
    )
    assert errors == []
    context.close()
