/*
 * Gantry DICOM viewer: one Cornerstone viewport over a series of timepoints.
 *
 * Plain ES2017, no build step. Needs the vendored UMD bundles loaded first (hammerjs,
 * cornerstone-math, cornerstone-core, cornerstone-tools, dicom-parser,
 * cornerstone-wado-image-loader); see templates/cases/_viewer.html.
 *
 *   const viewer = GantryViewer.mount(element, {imageIds, labels, csrfToken});
 *   viewer.onImageClick(({x, y, imageId, timepoint}) => ...);
 *
 * Mouse: left drag = the toolbar's tool (window/level by default), middle drag = pan,
 * right drag = zoom, wheel = previous/next timepoint, Ctrl/Cmd + wheel = zoom.
 * Keys (viewer focused): arrow keys = previous/next timepoint.
 *
 * After every render the root element carries data-rendered (the imageId on screen),
 * data-timepoint, data-window-center, data-window-width and data-scale, so browser tests can
 * wait for them; a failed load sets data-error.
 */
(function () {
  'use strict';

  const cornerstone = window.cornerstone;
  const cornerstoneTools = window.cornerstoneTools;
  const wadoImageLoader = window.cornerstoneWADOImageLoader;

  const LEFT_BUTTON_TOOLS = [
    {name: 'Wwwc', label: 'W/L', title: 'Left drag: window / level'},
    {name: 'Pan', label: 'Pan', title: 'Left drag: pan'},
    {name: 'Zoom', label: 'Zoom', title: 'Left drag: zoom'},
  ];
  // cornerstone-tools mouse button masks: 1 = left, 2 = right, 4 = middle.
  const DEFAULT_BUTTONS = {Wwwc: [1], Pan: [4], Zoom: [2]};
  const MIN_SCALE = 0.25;
  const MAX_SCALE = 20;
  const WHEEL_ZOOM_FACTOR = 1.1;
  // One mouse-wheel notch is about 100 in Chrome and Firefox; trackpads send many small deltas.
  const WHEEL_STEP = 50;
  // A press that moves less than this many CSS pixels is a click, not a drag.
  const CLICK_TOLERANCE = 4;
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

    cornerstoneTools.external.cornerstone = cornerstone;
    cornerstoneTools.external.cornerstoneMath = window.cornerstoneMath;
    cornerstoneTools.external.Hammer = window.Hammer;
    cornerstoneTools.init({showSVGCursors: false});
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

  /** Build toolbar, image area, overlay and timepoint controls inside the root element. */
  function buildLayout(root, timepointCount) {
    root.classList.add('gantry-viewer');
    root.tabIndex = 0;
    root.replaceChildren();

    const toolbar = makeElement('div', 'gv-toolbar');
    toolbar.setAttribute('role', 'toolbar');
    const stage = makeElement('div', 'gv-stage');
    const image = makeElement('div', 'gv-image');
    const overlay = makeElement('div', 'gv-overlay');
    const overlayLabel = makeElement('div', 'gv-overlay-label');
    const overlayWindow = makeElement('div', 'gv-overlay-window');
    const overlayZoom = makeElement('div', 'gv-overlay-zoom');
    overlay.append(overlayLabel, overlayWindow, overlayZoom);
    stage.append(image, overlay);

    const timebar = makeElement('div', 'gv-timebar');
    const slider = makeElement('input', 'gv-slider');
    slider.type = 'range';
    slider.min = '0';
    slider.max = String(timepointCount - 1);
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

    root.append(toolbar, stage, timebar);
    return {toolbar, image, overlayLabel, overlayWindow, overlayZoom, timebar, slider, fps, position};
  }

  function describeLoadError(error) {
    if (error && typeof error.status === 'number') {
      return `Could not load image (HTTP ${error.status})`;
    }
    return `Could not load image (${error && error.message ? error.message : error})`;
  }

  function mount(root, options) {
    const imageIds = options.imageIds;
    const labels = options.labels || [];
    if (!Array.isArray(imageIds) || imageIds.length === 0) {
      throw new Error('GantryViewer.mount needs at least one imageId');
    }
    configureLibraries(options.csrfToken);

    const parts = buildLayout(root, imageIds.length);
    const element = parts.image;
    const clickCallbacks = [];
    let current = -1;
    let latestRequest = 0;
    let cineTimer = null;
    let wheelDelta = 0;
    let pressedAt = null;

    cornerstone.enable(element);
    for (const tool of ['WwwcTool', 'PanTool', 'ZoomTool']) {
      cornerstoneTools.addToolForElement(element, cornerstoneTools[tool]);
    }
    for (const [name, buttons] of Object.entries(DEFAULT_BUTTONS)) {
      cornerstoneTools.setToolActiveForElement(element, name, {mouseButtonMask: buttons});
    }

    // --- toolbar and timebar ----------------------------------------------------------------

    // Function declarations below are hoisted, so the controls can name them here.
    const toolButtons = {};
    for (const tool of LEFT_BUTTON_TOOLS) {
      const select = () => setLeftButtonTool(tool.name);
      toolButtons[tool.name] = makeButton(tool.label, tool.title, select);
      parts.toolbar.append(toolButtons[tool.name]);
    }
    parts.toolbar.append(
      makeElement('span', 'gv-separator'),
      makeButton('Reset', 'Reset window / level, zoom and pan', reset),
    );

    const previousButton = makeButton('\u25C0', 'Previous timepoint (\u2190)', () => step(-1));
    const nextButton = makeButton('\u25B6', 'Next timepoint (\u2192)', () => step(1));
    const togglePlay = () => (isPlaying() ? pause() : play());
    const playButton = makeButton('Play', 'Play / pause cine', togglePlay);
    const fpsLabel = makeElement('label', 'gv-fps-label', 'fps');
    fpsLabel.prepend(parts.fps);
    parts.timebar.append(previousButton, playButton, nextButton, parts.slider, parts.position,
      fpsLabel);

    parts.slider.addEventListener('input', () => showTimepoint(Number(parts.slider.value)));
    parts.fps.addEventListener('change', () => {
      if (isPlaying()) {
        play();
      }
    });

    // --- timepoints -------------------------------------------------------------------------

    /** Show timepoint `index`, keeping the current window/level, zoom and pan. */
    function showTimepoint(index) {
      const target = Math.max(0, Math.min(imageIds.length - 1, index));
      const request = ++latestRequest;
      return cornerstone.loadAndCacheImage(imageIds[target]).then(
        (image) => {
          if (request !== latestRequest) {
            return; // A later request superseded this one while it loaded.
          }
          const keepViewport = current >= 0 ? cornerstone.getViewport(element) : undefined;
          current = target;
          delete root.dataset.error;
          cornerstone.displayImage(element, image, keepViewport);
        },
        (error) => {
          if (request === latestRequest) {
            root.dataset.error = describeLoadError(error);
            parts.overlayLabel.textContent = root.dataset.error;
          }
        },
      );
    }

    function step(delta) {
      return showTimepoint(current + delta);
    }

    function stepWrapping() {
      return showTimepoint((current + 1) % imageIds.length);
    }

    // --- cine -------------------------------------------------------------------------------

    function currentFps() {
      const fps = Number(parts.fps.value);
      return Number.isFinite(fps) ? Math.max(1, Math.min(MAX_FPS, fps)) : DEFAULT_FPS;
    }

    function play() {
      pause();
      cineTimer = window.setInterval(stepWrapping, 1000 / currentFps());
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

    // --- tools ------------------------------------------------------------------------------

    function setLeftButtonTool(name) {
      cornerstoneTools.setToolActiveForElement(element, name, {mouseButtonMask: [1]});
      for (const [toolName, button] of Object.entries(toolButtons)) {
        button.setAttribute('aria-pressed', String(toolName === name));
      }
      root.dataset.tool = name;
    }

    function zoomBy(factor) {
      const viewport = cornerstone.getViewport(element);
      viewport.scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, viewport.scale * factor));
      cornerstone.setViewport(element, viewport);
    }

    function reset() {
      cornerstone.reset(element);
    }

    // --- mouse and keyboard -----------------------------------------------------------------

    element.addEventListener('contextmenu', (event) => event.preventDefault());

    element.addEventListener('wheel', (event) => {
      event.preventDefault();
      if (event.ctrlKey || event.metaKey) {
        zoomBy(event.deltaY < 0 ? WHEEL_ZOOM_FACTOR : 1 / WHEEL_ZOOM_FACTOR);
        return;
      }
      wheelDelta += event.deltaY;
      if (Math.abs(wheelDelta) >= WHEEL_STEP) {
        step(Math.sign(wheelDelta));
        wheelDelta = 0;
      }
    }, {passive: false});

    root.addEventListener('keydown', (event) => {
      if (event.target instanceof HTMLInputElement) {
        return; // The slider and fps field handle their own arrow keys.
      }
      const delta = {ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1}[event.key];
      if (delta !== undefined) {
        event.preventDefault();
        step(delta);
      }
    });

    element.addEventListener('mousedown', (event) => {
      root.focus({preventScroll: true});
      pressedAt = event.button === 0 ? {x: event.pageX, y: event.pageY} : null;
    });

    element.addEventListener('mouseup', (event) => {
      const moved = pressedAt
        ? Math.hypot(event.pageX - pressedAt.x, event.pageY - pressedAt.y)
        : Infinity;
      pressedAt = null;
      if (event.button !== 0 || moved > CLICK_TOLERANCE || current < 0) {
        return;
      }
      const pixel = cornerstone.pageToPixel(element, event.pageX, event.pageY);
      const detail = {x: pixel.x, y: pixel.y, imageId: imageIds[current], timepoint: current};
      clickCallbacks.forEach((callback) => callback(detail));
    });

    // --- overlay and test hooks -------------------------------------------------------------

    element.addEventListener(cornerstone.EVENTS.IMAGE_RENDERED, (event) => {
      const viewport = event.detail.viewport;
      const center = viewport.voi.windowCenter;
      const width = viewport.voi.windowWidth;
      const label = labels[current] || `Timepoint ${current + 1}`;
      if (!root.dataset.error) {
        parts.overlayLabel.textContent = label;
      }
      parts.overlayWindow.textContent = `WC ${Math.round(center)} / WW ${Math.round(width)}`;
      parts.overlayZoom.textContent = `Zoom ${viewport.scale.toFixed(2)}\u00D7`;
      parts.position.textContent = `${current + 1} / ${imageIds.length}`;
      parts.slider.value = String(current);

      root.dataset.timepoint = String(current);
      root.dataset.windowCenter = String(center);
      root.dataset.windowWidth = String(width);
      root.dataset.scale = String(viewport.scale);
      root.dataset.rendered = imageIds[current];
    });

    // --- start ------------------------------------------------------------------------------

    setLeftButtonTool('Wwwc');
    showTimepoint(0).then(() => {
      // Warm the cache so that scrolling and cine do not wait on the network. A failure here
      // is reported when that timepoint is shown.
      for (const imageId of imageIds.slice(1)) {
        cornerstone.loadAndCacheImage(imageId).catch(() => {});
      }
    });

    const viewer = {
      element,
      get timepoint() {
        return current;
      },
      showTimepoint,
      next: () => step(1),
      previous: () => step(-1),
      play,
      pause,
      isPlaying,
      setLeftButtonTool,
      reset,
      /** Call `callback({x, y, imageId, timepoint})` with image pixel coordinates on a click. */
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
