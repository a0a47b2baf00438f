/*
 * Gantry viewer drawing: length measurements and page overlays, drawn on a Cornerstone
 * canvas after each render. `toCanvas({x, y})` maps image pixel coordinates (pixel (0, 0)
 * covers [0, 1) x [0, 1)) to canvas pixels; static/js/viewer.js passes Cornerstone's.
 *
 * Overlay shapes (image pixel coordinates; `color` optional on each):
 *   {type: 'point', x, y, label}                    a cross with an optional label
 *   {type: 'line', points: [[x, y], ...], closed}   a polyline or polygon
 *   {type: 'circle', x, y, radius}                  radius in pixels, or radiusMm in mm
 *   {type: 'mask', rows, columns, runs}             the outline of a binary mask given as
 *                                                   runs [start, length, ...] of row-major
 *                                                   indices
 */
(function () {
  'use strict';

  const DEFAULT_COLOR = '#ffd23f';
  const LENGTH_COLOR = '#4aa3ff';
  const CROSS_HALF = 7;
  const LABEL_FONT = '13px ui-monospace, "DejaVu Sans Mono", monospace';
  const edgeCache = new WeakMap();

  /** Segments [x0, y0, x1, y1] (pixel corners) between mask pixels and the pixels outside. */
  function maskEdges(shape) {
    const cached = edgeCache.get(shape);
    if (cached) {
      return cached;
    }
    const {rows, columns} = shape;
    const inside = new Uint8Array(rows * columns);
    const runs = shape.runs || [];
    for (let i = 0; i + 1 < runs.length; i += 2) {
      const end = Math.min(inside.length, runs[i] + runs[i + 1]);
      inside.fill(1, Math.max(0, runs[i]), Math.max(0, end));
    }
    const at = (r, c) => r >= 0 && r < rows && c >= 0 && c < columns && inside[r * columns + c];
    const edges = [];
    for (let r = 0; r < rows; r += 1) {
      for (let c = 0; c < columns; c += 1) {
        if (!inside[r * columns + c]) {
          continue;
        }
        if (!at(r, c - 1)) edges.push([c, r, c, r + 1]);
        if (!at(r, c + 1)) edges.push([c + 1, r, c + 1, r + 1]);
        if (!at(r - 1, c)) edges.push([c, r, c + 1, r]);
        if (!at(r + 1, c)) edges.push([c, r + 1, c + 1, r + 1]);
      }
    }
    edgeCache.set(shape, edges);
    return edges;
  }

  function outlinedText(ctx, text, x, y) {
    ctx.font = LABEL_FONT;
    ctx.lineWidth = 3;
    ctx.strokeStyle = 'rgba(0, 0, 0, 0.85)';
    ctx.strokeText(text, x, y);
    ctx.fillText(text, x, y);
  }

  function drawPoint(ctx, toCanvas, shape) {
    const p = toCanvas({x: shape.x, y: shape.y});
    ctx.beginPath();
    ctx.moveTo(p.x - CROSS_HALF, p.y);
    ctx.lineTo(p.x + CROSS_HALF, p.y);
    ctx.moveTo(p.x, p.y - CROSS_HALF);
    ctx.lineTo(p.x, p.y + CROSS_HALF);
    ctx.stroke();
    if (shape.label) {
      outlinedText(ctx, shape.label, p.x + CROSS_HALF + 3, p.y - CROSS_HALF);
    }
  }

  function drawLine(ctx, toCanvas, shape) {
    const points = (shape.points || []).map(([x, y]) => toCanvas({x, y}));
    if (points.length < 2) {
      return;
    }
    ctx.beginPath();
    ctx.moveTo(points[0].x, points[0].y);
    points.slice(1).forEach((p) => ctx.lineTo(p.x, p.y));
    if (shape.closed) {
      ctx.closePath();
    }
    ctx.stroke();
  }

  function drawCircle(ctx, toCanvas, shape, spacing) {
    let radius = shape.radius;
    if (shape.radiusMm !== undefined) {
      if (!spacing) {
        return; // A radius in mm needs the image's pixel spacing.
      }
      radius = shape.radiusMm / spacing.column;
    }
    const centre = toCanvas({x: shape.x, y: shape.y});
    const edge = toCanvas({x: shape.x + radius, y: shape.y});
    ctx.beginPath();
    ctx.arc(centre.x, centre.y, Math.hypot(edge.x - centre.x, edge.y - centre.y), 0, 2 * Math.PI);
    ctx.stroke();
  }

  function drawMask(ctx, toCanvas, shape) {
    ctx.beginPath();
    for (const [x0, y0, x1, y1] of maskEdges(shape)) {
      const a = toCanvas({x: x0, y: y0});
      const b = toCanvas({x: x1, y: y1});
      ctx.moveTo(a.x, a.y);
      ctx.lineTo(b.x, b.y);
    }
    ctx.stroke();
  }

  const DRAWERS = {point: drawPoint, line: drawLine, circle: drawCircle, mask: drawMask};

  /** Draw overlay shapes; an unknown type is skipped. */
  function drawShapes(ctx, toCanvas, shapes, spacing) {
    for (const shape of shapes) {
      const drawer = DRAWERS[shape.type];
      if (!drawer) {
        continue;
      }
      ctx.save();
      ctx.strokeStyle = shape.color || DEFAULT_COLOR;
      ctx.fillStyle = shape.color || DEFAULT_COLOR;
      ctx.lineWidth = 2;
      drawer(ctx, toCanvas, shape, spacing);
      ctx.restore();
    }
  }

  /** A length measurement: the line, a tick at each end, and its text beside the end. */
  function drawLength(ctx, toCanvas, start, end, text) {
    const a = toCanvas(start);
    const b = toCanvas(end);
    const length = Math.hypot(b.x - a.x, b.y - a.y) || 1;
    const nx = (-(b.y - a.y) / length) * 5;
    const ny = ((b.x - a.x) / length) * 5;
    ctx.save();
    ctx.strokeStyle = LENGTH_COLOR;
    ctx.fillStyle = LENGTH_COLOR;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    for (const p of [a, b]) {
      ctx.moveTo(p.x - nx, p.y - ny);
      ctx.lineTo(p.x + nx, p.y + ny);
    }
    ctx.stroke();
    ctx.fillStyle = '#ffffff';
    outlinedText(ctx, text, b.x + 8, b.y + 4);
    ctx.restore();
  }

  window.GantryViewerDraw = {maskEdges, drawShapes, drawLength};
})();
