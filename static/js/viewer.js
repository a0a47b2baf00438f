/*
 * Gantry DICOM viewer: a hanging layout of Cornerstone viewports over the studies of a case
 * (timepoints) and their series (contrasts). docs/viewer.md describes what it offers pages.
 *
 * Plain ES2017, no build step. Needs the vendored cornerstone-core, dicom-parser and
 * cornerstone-wado-image-loader, then viewer-geometry.js, viewer-draw.js and viewer-input.js,
 * loaded first; see templates/cases/_viewer.html.
 *
 *   const viewer = GantryViewer.mount(element, {studies, csrfToken});
 *   viewer.onImageClick(({x, y, mm, study, series, imageId}) => ...);
 *
 * Every viewport shows one image of one series of one study. All viewports scroll together
 * (one current timepoint), zoom and pan together, and share window/level per series.
 *
 * Mouse and touch: see viewer-input.js. Keys (viewer focused): arrow keys = previous/next
 * timepoint; PageUp/PageDown = previous/next image of a multi-image series.
 *
 * After every render the root element carries data-rendered (the imageId of the active
 * viewport), data-timepoint, data-series, data-window-center, data-window-width and
 * data-scale; each viewport (.gv-cell) carries its own data-study, data-series,
 * data-rendered and data-markers. A failed load sets data-error.
 */
(function () {
  'use strict';

  const cornerstone = window.cornerstone;
  const wadoImageLoader = window.cornerstoneWADOImageLoader;
  const geometry = window.GantryViewerGeometry;
  const draw = window.GantryViewerDraw;

  const TOOLS = [
    {name: 'Wwwc', label: 'W/L', title: 'Drag: window / level'},
    {name: 'Pan', label: 'Pan', title: 'Drag: pan'},
    {name: 'Zoom', label: 'Zoom', title: 'Drag: zoom'},
    {name: 'Length', label: 'Length', title: 'Drag: measure a length in mm'},
  ];
  // Zoom is relative to the fitted size; the fitted size magnifies an image at most this many
  // screen pixels per image pixel, so a small image is not blown up to fill a large screen.
  const MAX_FIT_SCALE = 4;
  const MIN_ZOOM = 0.25;
  const MAX_ZOOM = 20;
  const NARROW_PX = 600; // below this width the viewer starts with one viewport
  const MAX_SHOWN_STUDIES = 4;
  const DEFAULT_FPS = 4;
  const MAX_FPS = 30;

  const viewers = new WeakMap();
  let librariesConfigured = false;

  /** Wire the UMD bundles together once per page. */
  function configureLibraries(csrfToken) {
    if (librariesConfigured) {
      return;
    }
    librariesConfigured = true;

    wadoImageLoader.external.cornerstone = cornerstone;
    wadoImageLoader.external.dicomParser = window.dicomParser;
    wadoImageLoader.configure({
      beforeSend(xhr) {
        // The session cookie authenticates WADO requests; same-origin XHR sends it anyway and
        // withCredentials keeps that true for another origin. Returned headers are added.
        xhr.withCredentials = true;
        return csrfToken ? {'X-CSRFToken': csrfToken} : {};
      },
    });
    // The worker script (index.worker.min.worker.js) and the codec chunks are fetched from the
    // directory the loader script itself was served from; see static/vendor/VENDORED.md.
    wadoImageLoader.webWorkerManager.initialize({
      maxWebWorkers: Math.min(navigator.hardwareConcurrency || 1, 2),
      startWebWorkersOnDemand: true,
      webWorkerTaskPaths: [],
      taskConfiguration: {
        // Codecs are only loaded when a compressed transfer syntax is actually decoded.
        decodeTask: {initializeCodecsOnStartup: false, strict: false},
      },
    });
  }

  function makeElement(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function makeButton(label, title, onClick) {
    const button = makeElement('button', 'gv-button', label);
    button.type = 'button';
    button.title = title;
    button.addEventListener('click', onClick);
    return button;
  }

  function describeLoadError(error) {
    // The WADO loader rejects with {error: XMLHttpRequest} when the server says no.
    const status = error && (error.status ?? (error.error && error.error.status));
    if (typeof status === 'number') {
      return `Could not load image (HTTP ${status})`;
    }
    return `Could not load image (${error && error.message ? error.message : error})`;
  }

  /** The header values the viewer reads, as DICOM strings ("a\b\c"). */
  function headerOf(image, imageId) {
    let dataSet = image.data;
    if (!dataSet && imageId.startsWith('wadouri:')) {
      dataSet = wadoImageLoader.wadouri.dataSetCacheManager.get(imageId.slice(8));
    }
    if (dataSet) {
      const text = (tag) => dataSet.string(tag);
      return {
        imageOrientationPatient: text('x00200037'),
        imagePositionPatient: text('x00200032'),
        patientOrientation: text('x00200020'),
        pixelSpacing: text('x00280030'),
        imagerPixelSpacing: text('x00181164'),
      };
    }
    const plane = cornerstone.metaData.get('imagePlaneModule', imageId) || {};
    const join = (values) => (Array.isArray(values) ? values.join('\\') : undefined);
    return {
      imageOrientationPatient: join(plane.imageOrientationPatient),
      imagePositionPatient: join(plane.imagePositionPatient),
      pixelSpacing: join(plane.pixelSpacing),
    };
  }

  /** Geometry of a loaded image, computed once per image object. */
  const geometryCache = new WeakMap();
  function imageGeometry(image, imageId) {
    let found = geometryCache.get(image);
    if (!found) {
      const header = headerOf(image, imageId);
      const spacing = geometry.pixelSpacing(header);
      found = {header, spacing, markers: geometry.orientationMarkers(header)};
      if (spacing && !(image.rowPixelSpacing > 0 && image.columnPixelSpacing > 0)) {
        // ImagerPixelSpacing only: let Cornerstone draw non-square pixels in proportion too.
        image.rowPixelSpacing = spacing.row;
        image.columnPixelSpacing = spacing.column;
      }
      geometryCache.set(image, found);
    }
    return found;
  }

  /** Cornerstone stretches non-square pixels along one axis: the factors per axis. */
  function aspectFactors(image) {
    const row = image.rowPixelSpacing;
    const column = image.columnPixelSpacing;
    if (row > 0 && column > 0) {
      if (row < column) {
        return {x: column / row, y: 1};
      }
      if (row > column) {
        return {x: 1, y: row / column};
      }
    }
    return {x: 1, y: 1};
  }

  function fitScale(element, image) {
    const canvas = element.querySelector('canvas');
    const aspect = aspectFactors(image);
    return Math.min(
      canvas.width / (image.width * aspect.x),
      canvas.height / (image.height * aspect.y),
      MAX_FIT_SCALE,
    );
  }

  function clamp(value, low, high) {
    return Math.max(low, Math.min(high, value));
  }

  function dynamicRange(image) {
    const slope = image.slope || 1;
    const range = (image.maxPixelValue - image.minPixelValue) * slope;
    return Number.isFinite(range) && range > 0 ? range : 1024;
  }

  /** Build toolbar, stage and timebar inside the root element. */
  function buildFrame(root) {
    root.classList.add('gantry-viewer');
    root.tabIndex = 0;
    root.replaceChildren();
    const toolbar = makeElement('div', 'gv-toolbar');
    toolbar.setAttribute('role', 'toolbar');
    const stage = makeElement('div', 'gv-stage');
    const timebar = makeElement('div', 'gv-timebar');
    root.append(toolbar, stage, timebar);
    return {toolbar, stage, timebar};
  }

  /** One viewport: a Cornerstone element with its overlay text and orientation markers. */
  function buildCell() {
    const node = makeElement('div', 'gv-cell');
    const element = makeElement('div', 'gv-image');
    const overlay = makeElement('div', 'gv-overlay');
    const parts = {
      label: makeElement('div', 'gv-overlay-label'),
      window: makeElement('div', 'gv-overlay-window'),
      zoom: makeElement('div', 'gv-overlay-zoom'),
      message: makeElement('div', 'gv-overlay-message'),
    };
    const markers = {};
    for (const side of ['top', 'bottom', 'left', 'right']) {
      markers[side] = makeElement('div', `gv-marker gv-marker-${side}`);
      overlay.append(markers[side]);
    }
    overlay.append(parts.label, parts.window, parts.zoom, parts.message);
    node.append(element, overlay);
    return {node, element, parts, markers, study: -1, key: '', imageId: null, image: null,
      request: 0};
  }

  function mount(root, options) {
    const studies = geometry.normaliseStudies(options);
    if (studies.length === 0) {
      throw new Error('GantryViewer.mount needs at least one study');
    }
    const keys = geometry.seriesKeys(studies);
    configureLibraries(options.csrfToken);
    const frame = buildFrame(root);
    const narrow = root.clientWidth < NARROW_PX;
    const layout = options.layout || {};
    const state = {
      current: 0,
      first: 0,
      shown: clamp(layout.timepoints || (narrow ? 1 : 2), 1, Math.min(studies.length,
        MAX_SHOWN_STUDIES)),
      activeKey: keys.some((k) => k.key === layout.series) ? layout.series : keys[0].key,
      allSeries: layout.series === 'all' || (layout.series === undefined && !narrow),
      slice: 0,
      tool: 'Wwwc',
      zoom: 1,
      pan: {x: 0, y: 0},
      voi: new Map(),
      lengths: [],
      overlays: new Map(),
    };
    const clickCallbacks = [];
    let cells = [];
    let cineTimer = null;
    const resizeObserver = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const cell = cells.find((c) => c.element === entry.target);
        if (cell) {
          cornerstone.resize(cell.element, false);
          applyViewport(cell);
        }
      }
    });

    // --- data --------------------------------------------------------------------------------

    function seriesOf(study, key) {
      return studies[study] ? studies[study].series.find((s) => s.key === key) : undefined;
    }

    function imageIdOf(study, key) {
      const series = seriesOf(study, key);
      return series ? series.imageIds[Math.min(state.slice, series.imageIds.length - 1)] : null;
    }

    function labelOfKey(key) {
      const found = keys.find((k) => k.key === key);
      return found ? found.label : key;
    }

    function shownKeys() {
      return state.allSeries ? keys.map((k) => k.key) : [state.activeKey];
    }

    function activeCell() {
      return cells.find((c) => c.study === state.current && c.key === state.activeKey) || cells[0];
    }

    // --- toolbar and timebar -----------------------------------------------------------------

    const toolButtons = {};
    for (const tool of TOOLS) {
      toolButtons[tool.name] = makeButton(tool.label, tool.title, () => setTool(tool.name));
      frame.toolbar.append(toolButtons[tool.name]);
    }
    frame.toolbar.append(
      makeButton('Reset', 'Reset window / level, zoom and pan', reset),
      makeButton('Clear', 'Remove the length measurements', clearLengths),
    );

    const seriesButtons = new Map();
    if (keys.length > 1) {
      const group = makeElement('div', 'gv-group');
      group.setAttribute('aria-label', 'Series shown');
      for (const {key, label} of keys) {
        seriesButtons.set(key, makeButton(label, `Show ${label} only`, () => {
          setLayout({series: key});
        }));
      }
      seriesButtons.set('all', makeButton('All series', 'Show every series side by side',
        () => setLayout({series: 'all'})));
      group.append(...seriesButtons.values());
      frame.toolbar.append(group);
    }

    const shownButtons = new Map();
    if (studies.length > 1) {
      const group = makeElement('div', 'gv-group');
      group.setAttribute('aria-label', 'Timepoints side by side');
      group.append(makeElement('span', 'gv-group-label', 'Side by side'));
      for (let n = 1; n <= Math.min(studies.length, MAX_SHOWN_STUDIES); n += 1) {
        shownButtons.set(n, makeButton(String(n), `Show ${n} timepoint(s) side by side`,
          () => setLayout({timepoints: n})));
      }
      group.append(...shownButtons.values());
      frame.toolbar.append(group);
    }

    const slider = makeElement('input', 'gv-slider');
    slider.type = 'range';
    slider.min = '0';
    slider.max = String(studies.length - 1);
    slider.step = '1';
    slider.value = '0';
    slider.setAttribute('aria-label', 'Timepoint');
    const fps = makeElement('input', 'gv-fps');
    fps.type = 'number';
    fps.min = '1';
    fps.max = String(MAX_FPS);
    fps.value = String(DEFAULT_FPS);
    fps.setAttribute('aria-label', 'Cine frames per second');
    const position = makeElement('span', 'gv-position');
    const previousButton = makeButton('\u25C0', 'Previous timepoint (\u2190)', () => step(-1));
    const nextButton = makeButton('\u25B6', 'Next timepoint (\u2192)', () => step(1));
    const playButton = makeButton('Play', 'Play / pause cine',
      () => (isPlaying() ? pause() : play()));
    const fpsLabel = makeElement('label', 'gv-fps-label', 'fps');
    fpsLabel.prepend(fps);
    frame.timebar.append(previousButton, playButton, nextButton, slider, position, fpsLabel);
    slider.addEventListener('input', () => showTimepoint(Number(slider.value)));
    fps.addEventListener('change', () => isPlaying() && play());

    function updateControls() {
      for (const [name, button] of Object.entries(toolButtons)) {
        button.setAttribute('aria-pressed', String(name === state.tool));
      }
      for (const [key, button] of seriesButtons) {
        const pressed = key === 'all' ?
          state.allSeries : !state.allSeries && key === state.activeKey;
        button.setAttribute('aria-pressed', String(pressed));
      }
      for (const [n, button] of shownButtons) {
        button.setAttribute('aria-pressed', String(n === state.shown));
      }
      slider.value = String(state.current);
      position.textContent = `${state.current + 1} / ${studies.length}`;
      root.dataset.tool = state.tool;
    }

    // --- layout ------------------------------------------------------------------------------

    /** Size the stage so that viewports are about square and the whole fits the window. */
    function sizeStage(rows, columns) {
      const width = frame.stage.clientWidth || root.clientWidth;
      const cap = Math.max(280, 0.78 * window.innerHeight);
      frame.stage.style.height = `${Math.round(Math.min(rows * (width / columns), cap))}px`;
      frame.stage.style.gridTemplateColumns = `repeat(${columns}, minmax(0, 1fr))`;
      frame.stage.style.gridTemplateRows = `repeat(${rows}, minmax(0, 1fr))`;
    }

    /** (Re)build the viewports when the layout's shape changed; otherwise reassign them. */
    function arrange() {
      state.first = geometry.windowStart(state.current, state.shown, studies.length, state.first);
      const hanging = geometry.hangingCells(state.first, state.shown, shownKeys());
      const sameShape = cells.length === hanging.cells.length &&
        frame.stage.dataset.layout === `${hanging.rows}x${hanging.columns}`;
      if (!sameShape) {
        for (const cell of cells) {
          resizeObserver.unobserve(cell.element);
          cornerstone.disable(cell.element);
        }
        frame.stage.replaceChildren();
        frame.stage.dataset.layout = `${hanging.rows}x${hanging.columns}`;
        root.dataset.layout = frame.stage.dataset.layout;
        sizeStage(hanging.rows, hanging.columns);
        cells = hanging.cells.map(() => buildCell());
        for (const cell of cells) {
          frame.stage.append(cell.node);
          cornerstone.enable(cell.element);
          attachCell(cell);
          resizeObserver.observe(cell.element);
        }
      }
      hanging.cells.forEach((assignment, index) => {
        cells[index].study = assignment.study;
        cells[index].key = assignment.key;
      });
      updateControls();
      return Promise.all(cells.map(renderCell));
    }

    function setLayout(change) {
      if (change.series === 'all') {
        state.allSeries = true;
      } else if (change.series !== undefined && keys.some((k) => k.key === change.series)) {
        state.allSeries = false;
        state.activeKey = change.series;
      }
      if (change.timepoints !== undefined) {
        state.shown = clamp(Math.round(change.timepoints), 1,
          Math.min(studies.length, MAX_SHOWN_STUDIES));
      }
      return arrange();
    }

    // --- rendering ---------------------------------------------------------------------------

    function renderCell(cell) {
      const imageId = imageIdOf(cell.study, cell.key);
      const request = ++cell.request;
      cell.node.dataset.study = String(cell.study);
      cell.node.dataset.series = cell.key;
      cell.node.classList.toggle('gv-active', cell === activeCell());
      if (!imageId) {
        cell.imageId = null;
        cell.image = null;
        cell.node.classList.add('gv-missing');
        delete cell.node.dataset.rendered;
        cell.parts.message.textContent = `No ${labelOfKey(cell.key)} at this timepoint`;
        cell.parts.label.textContent = studies[cell.study].label;
        return Promise.resolve();
      }
      cell.node.classList.remove('gv-missing');
      cell.parts.message.textContent = '';
      return cornerstone.loadAndCacheImage(imageId).then(
        (image) => {
          if (request !== cell.request) {
            return; // A later request superseded this one while it loaded.
          }
          cell.imageId = imageId;
          cell.image = image;
          delete cell.node.dataset.error;
          cornerstone.displayImage(cell.element, image, viewportFor(cell, image));
        },
        (error) => {
          if (request === cell.request) {
            cell.imageId = null;
            cell.image = null;
            cell.node.classList.add('gv-missing');
            delete cell.node.dataset.rendered;
            cell.node.dataset.error = describeLoadError(error);
            cell.parts.label.textContent = describeCell(cell);
            cell.parts.message.textContent = cell.node.dataset.error;
            if (cell === activeCell()) {
              root.dataset.error = cell.node.dataset.error;
            }
          }
        },
      );
    }

    function voiFor(key, image) {
      return state.voi.get(key) || {windowCenter: image.windowCenter,
        windowWidth: image.windowWidth};
    }

    function viewportFor(cell, image) {
      const scale = fitScale(cell.element, image) * state.zoom;
      return {
        scale,
        translation: {x: state.pan.x * image.width, y: state.pan.y * image.height},
        voi: {...voiFor(cell.key, image)},
        invert: false,
        hflip: false,
        vflip: false,
        rotation: 0,
      };
    }

    function applyViewport(cell) {
      if (cell.image && cornerstone.getEnabledElement(cell.element).image) {
        cornerstone.setViewport(cell.element, viewportFor(cell, cell.image));
      }
    }

    function applyViewports(filter) {
      cells.filter((c) => !filter || filter(c)).forEach(applyViewport);
    }

    function describeCell(cell) {
      const series = seriesOf(cell.study, cell.key);
      const parts = [studies[cell.study].label];
      if (series && series.label) {
        parts.push(series.label);
      }
      if (series && series.imageIds.length > 1) {
        parts.push(`image ${Math.min(state.slice, series.imageIds.length - 1) + 1}` +
          `/${series.imageIds.length}`);
      }
      return parts.join(' \u00B7 ');
    }

    function onRendered(cell, event) {
      if (!cell.image) {
        return; // Cornerstone redrew an image this viewport no longer shows (it is hidden).
      }
      const viewport = event.detail.viewport;
      const {spacing, markers} = imageGeometry(cell.image, cell.imageId);
      const center = viewport.voi.windowCenter;
      const width = viewport.voi.windowWidth;
      cell.parts.label.textContent = describeCell(cell);
      cell.parts.window.textContent = `WC ${Math.round(center)} / WW ${Math.round(width)}`;
      cell.parts.zoom.textContent = `Zoom ${viewport.scale.toFixed(2)}\u00D7`;
      for (const side of ['top', 'bottom', 'left', 'right']) {
        cell.markers[side].textContent = markers ? markers[side] : '';
      }
      cell.node.dataset.markers = markers ?
        [markers.left, markers.right, markers.top, markers.bottom].join(',') : '';
      cell.node.dataset.rendered = cell.imageId;
      cell.node.dataset.windowCenter = String(center);
      cell.node.dataset.windowWidth = String(width);
      cell.node.dataset.scale = String(viewport.scale);
      drawAnnotations(cell, event.detail.canvasContext, spacing);
      if (cell === activeCell()) {
        publish(cell, viewport);
      }
    }

    function publish(cell, viewport) {
      if (!cell.node.dataset.error) {
        delete root.dataset.error;
      }
      root.dataset.timepoint = String(state.current);
      root.dataset.series = cell.key;
      root.dataset.windowCenter = String(viewport.voi.windowCenter);
      root.dataset.windowWidth = String(viewport.voi.windowWidth);
      root.dataset.scale = String(viewport.scale);
      root.dataset.rendered = cell.imageId;
    }

    function drawAnnotations(cell, context, spacing) {
      const toCanvas = (point) => cornerstone.pixelToCanvas(cell.element, point);
      context.save();
      context.setTransform(1, 0, 0, 1, 0, 0);
      for (const overlay of state.overlays.values()) {
        if (overlayMatches(overlay, cell)) {
          draw.drawShapes(context, toCanvas, overlay.shapes, spacing);
        }
      }
      const lengths = state.lengths.filter((l) => l.imageId === cell.imageId);
      const draft = input.draftLength(cell);
      if (draft) {
        lengths.push(measure(cell, draft.start, draft.end));
      }
      for (const length of lengths) {
        draw.drawLength(context, toCanvas, length.start, length.end, length.text);
      }
      context.restore();
    }

    function overlayMatches(overlay, cell) {
      if (overlay.imageId !== undefined) {
        return overlay.imageId === cell.imageId;
      }
      return (overlay.study === undefined || overlay.study === cell.study) &&
        (overlay.series === undefined || String(overlay.series) === cell.key);
    }

    // --- timepoints and images ---------------------------------------------------------------

    /** Show timepoint `index` in the active viewport, keeping window, zoom and pan. */
    function showTimepoint(index) {
      state.current = clamp(index, 0, studies.length - 1);
      return arrange();
    }

    function step(delta) {
      return showTimepoint(state.current + delta);
    }

    function showImage(index) {
      const longest = Math.max(...studies.flatMap((s) => s.series.map((x) => x.imageIds.length)));
      state.slice = clamp(index, 0, longest - 1);
      return arrange();
    }

    function play() {
      pause();
      const rate = clamp(Number(fps.value) || DEFAULT_FPS, 1, MAX_FPS);
      cineTimer = window.setInterval(() => showTimepoint((state.current + 1) % studies.length),
        1000 / rate);
      playButton.textContent = 'Pause';
      playButton.setAttribute('aria-pressed', 'true');
    }

    function pause() {
      if (cineTimer !== null) {
        window.clearInterval(cineTimer);
        cineTimer = null;
      }
      playButton.textContent = 'Play';
      playButton.setAttribute('aria-pressed', 'false');
    }

    function isPlaying() {
      return cineTimer !== null;
    }

    // --- tools -------------------------------------------------------------------------------

    function setTool(name) {
      if (TOOLS.some((tool) => tool.name === name)) {
        state.tool = name;
      }
      updateControls();
    }

    function reset() {
      state.zoom = 1;
      state.pan = {x: 0, y: 0};
      state.voi.clear();
      applyViewports();
    }

    function clearLengths() {
      state.lengths = [];
      cells.forEach((cell) => cell.image && cornerstone.updateImage(cell.element));
      delete root.dataset.lengthMm;
    }

    function zoomTo(zoom) {
      state.zoom = clamp(zoom, MIN_ZOOM, MAX_ZOOM);
      applyViewports();
    }

    function measure(cell, start, end) {
      const {spacing} = imageGeometry(cell.image, cell.imageId);
      const mm = geometry.distanceMm(start, end, spacing);
      const pixels = Math.hypot(end.x - start.x, end.y - start.y);
      return {
        imageId: cell.imageId,
        study: cell.study,
        series: cell.key,
        start,
        end,
        lengthMm: mm,
        lengthPixels: pixels,
        spacingSource: spacing ? spacing.source : null,
        text: mm === null ? `${pixels.toFixed(1)} px (no pixel spacing)` : `${mm.toFixed(1)} mm`,
      };
    }

    /** A point of the image in a viewport, in pixels, mm and patient coordinates. */
    function pointDetail(cell, pageX, pageY) {
      const pixel = cornerstone.pageToPixel(cell.element, pageX, pageY);
      const {header, spacing} = imageGeometry(cell.image, cell.imageId);
      return {
        x: pixel.x,
        y: pixel.y,
        mm: spacing ? {x: pixel.x * spacing.column, y: pixel.y * spacing.row} : null,
        spacing,
        patient: geometry.patientPoint(pixel, header, spacing),
        imageId: cell.imageId,
        study: cell.study,
        timepoint: cell.study,
        series: cell.key,
      };
    }

    // --- input -------------------------------------------------------------------------------

    function activate(cell) {
      if (state.current === cell.study && state.activeKey === cell.key) {
        return;
      }
      state.current = cell.study;
      state.activeKey = cell.key;
      cells.forEach((c) => c.node.classList.toggle('gv-active', c === cell));
      updateControls();
      if (cell.image) {
        publish(cell, cornerstone.getViewport(cell.element));
      }
    }

    function windowLevel(cell, dx, dy) {
      const multiplier = dynamicRange(cell.image) / 1024;
      const voi = {...voiFor(cell.key, cell.image)};
      voi.windowWidth = Math.max(1, voi.windowWidth + dx * multiplier);
      voi.windowCenter += dy * multiplier;
      state.voi.set(cell.key, voi);
      applyViewports((c) => c.key === cell.key);
    }

    function pan(cell, dx, dy) {
      const image = cell.image;
      const aspect = aspectFactors(image);
      const scale = fitScale(cell.element, image) * state.zoom;
      state.pan.x += dx / (scale * aspect.x * image.width);
      state.pan.y += dy / (scale * aspect.y * image.height);
      applyViewports();
    }

    /** Zoom and pan so that the image point `anchor` sits under canvas point `at`. */
    function zoomAround(cell, zoom, anchor, at) {
      const image = cell.image;
      const aspect = aspectFactors(image);
      const canvas = cell.element.querySelector('canvas');
      state.zoom = clamp(zoom, MIN_ZOOM, MAX_ZOOM);
      const scale = fitScale(cell.element, image) * state.zoom;
      const tx = (at.x - canvas.width / 2) / (scale * aspect.x) - anchor.x + image.width / 2;
      const ty = (at.y - canvas.height / 2) / (scale * aspect.y) - anchor.y + image.height / 2;
      state.pan = {x: tx / image.width, y: ty / image.height};
      applyViewports();
    }

    const input = window.GantryViewerInput.create({
      tool: () => state.tool,
      focus: () => root.focus({preventScroll: true}),
      activate,
      ready: (cell) => Boolean(cell.image),
      saveWindows: () => new Map(state.voi),
      restoreWindows(saved) {
        state.voi = new Map(saved);
        applyViewports();
      },
      windowLevel,
      pan,
      zoom: () => state.zoom,
      zoomBy: (factor) => zoomTo(state.zoom * factor),
      zoomAround,
      pixelAt: (cell, event) => cornerstone.pageToPixel(cell.element, event.pageX, event.pageY),
      canvasToPixel: (cell, point) => cornerstone.canvasToPixel(cell.element, point),
      step,
      stepImage: (delta) => showImage(state.slice + delta),
      click(cell, event) {
        const detail = pointDetail(cell, event.pageX, event.pageY);
        clickCallbacks.forEach((callback) => callback(detail));
      },
      redraw: (cell) => cornerstone.updateImage(cell.element),
      addLength(cell, start, end) {
        const length = measure(cell, start, end);
        state.lengths.push(length);
        root.dataset.lengthMm = length.lengthMm === null ? '' : length.lengthMm.toFixed(3);
        cornerstone.updateImage(cell.element);
      },
    });

    function attachCell(cell) {
      const element = cell.element;
      element.addEventListener('contextmenu', (event) => event.preventDefault());
      element.addEventListener('pointerdown', (event) => input.pointerDown(cell, event));
      element.addEventListener('pointermove', input.pointerMove);
      element.addEventListener('pointerup', input.pointerUp);
      element.addEventListener('pointercancel', input.pointerUp);
      element.addEventListener('wheel', input.wheel, {passive: false});
      element.addEventListener(cornerstone.EVENTS.IMAGE_RENDERED,
        (event) => onRendered(cell, event));
    }

    root.addEventListener('keydown', (event) => {
      if (event.target instanceof HTMLInputElement) {
        return; // The slider and fps field handle their own arrow keys.
      }
      const delta = {ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1}[event.key];
      const imageDelta = {PageUp: -1, PageDown: 1}[event.key];
      if (delta !== undefined) {
        event.preventDefault();
        step(delta);
      } else if (imageDelta !== undefined) {
        event.preventDefault();
        showImage(state.slice + imageDelta);
      }
    });

    window.addEventListener('resize', () => {
      const [rows, columns] = (frame.stage.dataset.layout || '1x1').split('x').map(Number);
      sizeStage(rows, columns);
    });

    // --- start -------------------------------------------------------------------------------

    setTool('Wwwc');
    arrange().then(() => {
      // Warm the cache so that scrolling and cine do not wait on the network. A failure here
      // is reported when that image is shown.
      for (const study of studies) {
        for (const series of study.series) {
          series.imageIds.forEach((id) => cornerstone.loadAndCacheImage(id).catch(() => {}));
        }
      }
    });

    const viewer = {
      /** The Cornerstone element of the active viewport. */
      get element() {
        return activeCell().element;
      },
      get timepoint() {
        return state.current;
      },
      get series() {
        return state.activeKey;
      },
      studies: studies.map((s) => ({label: s.label, series: s.series.map((x) => x.key)})),
      seriesKeys: keys,
      showTimepoint,
      next: () => step(1),
      previous: () => step(-1),
      showImage,
      play,
      pause,
      isPlaying,
      setTool,
      setLeftButtonTool: setTool,
      setLayout,
      reset,
      clearLengths,
      /** Length measurements made so far: [{imageId, study, series, start, end, lengthMm,
       * lengthPixels, spacingSource}]. */
      measurements: () => state.lengths.map(({text, ...length}) => length),
      /** Draw `spec.shapes` (viewer-draw.js) on the images that `spec` names: `imageId`, or
       * `study` and/or `series` (omitted: every one). Replaces the overlay called `name`. */
      setOverlay(name, spec) {
        state.overlays.set(name, {...spec, shapes: spec.shapes || []});
        cells.forEach((cell) => cell.image && cornerstone.updateImage(cell.element));
      },
      clearOverlay(name) {
        state.overlays.delete(name);
        cells.forEach((cell) => cell.image && cornerstone.updateImage(cell.element));
      },
      /** Spacing, markers and size of the image a viewport shows for (study, series). */
      imageInfo(study, series) {
        const cell = cells.find((c) => c.study === study && c.key === String(series) && c.image);
        if (!cell) {
          return null;
        }
        const {spacing, markers} = imageGeometry(cell.image, cell.imageId);
        return {imageId: cell.imageId, rows: cell.image.rows, columns: cell.image.columns,
          spacing, markers};
      },
      /** Call `callback(detail)` on a click or tap: pointDetail() above says what it holds. */
      onImageClick(callback) {
        clickCallbacks.push(callback);
      },
    };
    viewers.set(root, viewer);
    return viewer;
  }

  window.GantryViewer = {
    mount,
    /** The viewer mounted on `root`, or undefined. */
    get: (root) => viewers.get(root),
  };
})();
