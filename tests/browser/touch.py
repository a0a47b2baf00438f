"""Touch input for browser tests: Chrome DevTools Protocol touch events, which Chromium turns
into touch and pointer events as a phone's touch screen would. Each event carries its own
timestamp, so a flick is a flick however slowly the test machine sends it."""

from __future__ import annotations

import time

from playwright.sync_api import Page

Point = tuple[float, float]


class TouchScreen:
    """One page's touch screen; points are in CSS pixels of the page's viewport."""

    def __init__(self, page: Page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.clock = time.time()

    def _send(self, kind: str, points: list[Point], after_ms: float) -> None:
        self.clock += after_ms / 1000
        self.cdp.send(
            "Input.dispatchTouchEvent",
            {
                "type": kind,
                "touchPoints": [
                    {"x": x, "y": y, "id": index, "radiusX": 4, "radiusY": 4, "force": 1}
                    for index, (x, y) in enumerate(points)
                ],
                "timestamp": self.clock,
            },
        )

    def gesture(self, start: list[Point], end: list[Point], *, ms: float, steps: int = 6) -> None:
        """Fingers down at `start`, moved in `steps` even steps to `end` over `ms`, lifted."""
        self.clock = max(self.clock, time.time())
        self._send("touchStart", start, 0)
        for step in range(1, steps + 1):
            t = step / steps
            points = [
                (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
                for a, b in zip(start, end, strict=True)
            ]
            self._send("touchMove", points, ms / steps)
        self._send("touchEnd", [], 10)

    def tap(self, point: Point) -> None:
        self.clock = max(self.clock, time.time())
        self._send("touchStart", [point], 0)
        self._send("touchEnd", [], 60)

    def flick(self, start: Point, dx: float) -> None:
        """A quick sideways flick: 120 ms."""
        self.gesture([start], [(start[0] + dx, start[1])], ms=120, steps=4)

    def drag(self, start: Point, end: Point) -> None:
        """A slow one-finger drag: 800 ms."""
        self.gesture([start], [end], ms=800, steps=8)

    def pinch(self, centre: Point, from_gap: float, to_gap: float) -> None:
        """Two fingers either side of `centre`, `from_gap` apart, spread to `to_gap`."""
        x, y = centre
        self.gesture(
            [(x - from_gap / 2, y), (x + from_gap / 2, y)],
            [(x - to_gap / 2, y), (x + to_gap / 2, y)],
            ms=400,
            steps=8,
        )
