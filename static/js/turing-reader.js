/*
 * Times how long the blinded image is on screen: from the first render until the answer is
 * submitted, leaving out time while the tab is hidden. The total goes into the form's
 * hidden time_ms field (the server adds it to any earlier visit's time).
 */
(function () {
  'use strict';

  const form = document.getElementById('turing-response');
  const viewer = document.getElementById('gantry-viewer');
  if (!form || !viewer) {
    return;
  }
  let shownMs = 0;
  let since = null;

  function start() {
    if (since === null && !document.hidden) {
      since = performance.now();
    }
  }
  function stop() {
    if (since !== null) {
      shownMs += performance.now() - since;
      since = null;
    }
  }

  if (viewer.dataset.rendered) {
    start();
  } else {
    new MutationObserver(function (_records, observer) {
      if (viewer.dataset.rendered || viewer.dataset.error) {
        observer.disconnect();
        start();
      }
    }).observe(viewer, {attributes: true});
  }
  document.addEventListener('visibilitychange', function () {
    if (document.hidden) {
      stop();
    } else if (viewer.dataset.rendered) {
      start();
    }
  });
  form.addEventListener('submit', function () {
    stop();
    form.elements.time_ms.value = String(Math.round(shownMs));
    start();
  });
})();
