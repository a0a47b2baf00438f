/*
 * Gantry viewer input: turns pointer (mouse, touch, pen) and wheel events into the viewer's
 * verbs. static/js/viewer.js creates one per viewer and forwards its viewports' events.
 *
 *   Mouse: left drag = the toolbar's tool, middle drag = pan, right drag = zoom; a press that
 *          moves at most CLICK_TOLERANCE pixels is a click. Wheel = previous/next timepoint,
 *          Ctrl/Cmd + wheel = zoom, Shift + wheel = previous/next image of a series.
 *   Touch: one finger = the toolbar's tool; with the window/level tool, a quick sideways
 *          flick steps through timepoints instead; two fingers = pinch zoom and pan about
 *          the point between them; a tap is a click.
 *
 * `actions` (what viewer.js does for each verb): tool(), focus(), activate(cell),
 * ready(cell), saveWindows(), restoreWindows(saved), windowLevel(cell, dx, dy),
 * pan(cell, dx, dy), zoom(), zoomBy(factor), zoomAround(cell, zoom, anchor, at),
 * pixelAt(cell, event), canvasToPixel(cell, point), step(delta), stepImage(delta),
 * click(cell, event), redraw(cell), addLength(cell, start, end).
 */
(function () {
  'use strict';

  // A press that moves less than this many CSS pixels is a click (or tap), not a drag.
  const CLICK_TOLERANCE = 4;
  // A touch that moves this far, mostly sideways, within this time is a flick, not a drag.
  const FLICK_MIN_PX = 50;
  const FLICK_MAX_MS = 350;
  const DRAG_ZOOM_PX = 150; // dragging this far up zooms in by a factor of e
  const WHEEL_ZOOM_FACTOR = 1.1;
  // One mouse-wheel notch is about 100 in Chrome and Firefox; trackpads send many small deltas.
  const WHEEL_STEP = 50;

  /** Whether a one-finger window/level drag from `start` to `end` was a flick. */
  function isFlick(start, end) {
    const dx = end.x - start.x;
    const dy = end.y - start.y;
    return end.time - start.time <= FLICK_MAX_MS && Math.abs(dx) >= FLICK_MIN_PX &&
      Math.abs(dx) > 2 * Math.abs(dy);
  }

  function create(actions) {
    const pointers = new Map(); // pointerId -> {x, y} in client coordinates
    let gesture = null;
    let wheelDelta = 0;

    function dragKind(event) {
      if (event.pointerType === 'mouse') {
        return {0: actions.tool(), 1: 'Pan', 2: 'Zoom'}[event.button];
      }
      return actions.tool();
    }

    function startDrag(cell, event) {
      const kind = dragKind(event);
      if (!kind || !actions.ready(cell)) {
        return null;
      }
      const at = {x: event.clientX, y: event.clientY, time: event.timeStamp};
      return {
        kind,
        cell,
        touch: event.pointerType !== 'mouse',
        pointerId: event.pointerId,
        primary: event.pointerType !== 'mouse' || event.button === 0,
        start: at,
        last: at,
        travelled: 0,
        savedWindows: actions.saveWindows(),
        from: actions.pixelAt(cell, event),
        to: null,
      };
    }

    function fingersMiddle(cell) {
      const [a, b] = Array.from(pointers.values());
      const rect = cell.element.getBoundingClientRect();
      return {
        middle: {x: (a.x + b.x) / 2 - rect.left, y: (a.y + b.y) / 2 - rect.top},
        distance: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)),
      };
    }

    function startPinch(cell) {
      const {middle, distance} = fingersMiddle(cell);
      return {kind: 'Pinch', cell, distance, zoom: actions.zoom(),
        anchor: actions.canvasToPixel(cell, middle)};
    }

    function pointerDown(cell, event) {
      actions.focus();
      if (event.pointerType === 'mouse') {
        event.preventDefault(); // no text selection while dragging
      }
      cell.element.setPointerCapture(event.pointerId);
      pointers.set(event.pointerId, {x: event.clientX, y: event.clientY});
      if (pointers.size === 1) {
        actions.activate(cell);
        gesture = startDrag(cell, event);
      } else if (pointers.size === 2 && event.pointerType === 'touch') {
        const pinched = gesture ? gesture.cell : cell;
        if (gesture && gesture.savedWindows) {
          actions.restoreWindows(gesture.savedWindows); // the first finger meant a pinch
        }
        gesture = actions.ready(pinched) ? startPinch(pinched) : null;
      }
    }

    function moveDrag(drag, event) {
      const dxStart = event.clientX - drag.start.x;
      const dyStart = event.clientY - drag.start.y;
      drag.travelled = Math.max(drag.travelled, Math.hypot(dxStart, dyStart));
      if (drag.travelled <= CLICK_TOLERANCE) {
        return; // a click or tap in the making: change nothing yet
      }
      // The first move past the tolerance applies everything since the press.
      const dx = event.clientX - drag.last.x;
      const dy = event.clientY - drag.last.y;
      drag.last = {x: event.clientX, y: event.clientY, time: event.timeStamp};
      if (drag.kind === 'Wwwc') {
        actions.windowLevel(drag.cell, dx, dy);
      } else if (drag.kind === 'Pan') {
        actions.pan(drag.cell, dx, dy);
      } else if (drag.kind === 'Zoom') {
        actions.zoomBy(Math.exp(-dy / DRAG_ZOOM_PX));
      } else if (drag.kind === 'Length') {
        drag.to = actions.pixelAt(drag.cell, event);
        actions.redraw(drag.cell);
      }
    }

    function pointerMove(event) {
      if (!pointers.has(event.pointerId)) {
        return;
      }
      pointers.set(event.pointerId, {x: event.clientX, y: event.clientY});
      if (gesture && gesture.kind === 'Pinch' && pointers.size >= 2) {
        const {middle, distance} = fingersMiddle(gesture.cell);
        actions.zoomAround(gesture.cell, gesture.zoom * distance / gesture.distance,
          gesture.anchor, middle);
      } else if (gesture && gesture.kind !== 'Pinch' && gesture.pointerId === event.pointerId) {
        moveDrag(gesture, event);
      }
    }

    function endDrag(drag, event) {
      if (drag.travelled <= CLICK_TOLERANCE) {
        if (drag.primary) {
          actions.click(drag.cell, event);
        }
        return;
      }
      const end = {x: event.clientX, y: event.clientY, time: event.timeStamp};
      if (drag.touch && drag.kind === 'Wwwc' && isFlick(drag.start, end)) {
        actions.restoreWindows(drag.savedWindows);
        actions.step(end.x < drag.start.x ? 1 : -1); // flick left: the next timepoint
      } else if (drag.kind === 'Length' && drag.to) {
        actions.addLength(drag.cell, drag.from, drag.to);
      }
    }

    function pointerUp(event) {
      if (!pointers.delete(event.pointerId)) {
        return;
      }
      const ended = gesture;
      if (ended && ended.kind !== 'Pinch' && ended.pointerId === event.pointerId) {
        gesture = null;
        if (event.type === 'pointerup') {
          endDrag(ended, event);
        } else if (ended.kind === 'Length') {
          actions.redraw(ended.cell);
        }
      } else if (ended && ended.kind === 'Pinch' && pointers.size < 2) {
        gesture = null; // the finger left on the glass starts nothing until lifted
      }
    }

    function wheel(event) {
      event.preventDefault();
      if (event.ctrlKey || event.metaKey) {
        actions.zoomBy(event.deltaY < 0 ? WHEEL_ZOOM_FACTOR : 1 / WHEEL_ZOOM_FACTOR);
        return;
      }
      wheelDelta += event.deltaY || event.deltaX;
      if (Math.abs(wheelDelta) >= WHEEL_STEP) {
        const delta = Math.sign(wheelDelta);
        wheelDelta = 0;
        if (event.shiftKey) {
          actions.stepImage(delta);
        } else {
          actions.step(delta);
        }
      }
    }

    /** The length being drawn in `cell`, {start, end}, or null. */
    function draftLength(cell) {
      if (gesture && gesture.kind === 'Length' && gesture.cell === cell && gesture.to) {
        return {start: gesture.from, end: gesture.to};
      }
      return null;
    }

    return {pointerDown, pointerMove, pointerUp, wheel, draftLength};
  }

  window.GantryViewerInput = {create, isFlick, CLICK_TOLERANCE, FLICK_MIN_PX, FLICK_MAX_MS};
})();
