/*
 * Quiz item page (templates/edu/attempt_item.html): a click on the image answers the
 * localisation question. The viewer reports image pixel coordinates and the shown image's
 * index; they go into the question's hidden inputs and are posted with the other answers.
 */
(function () {
  'use strict';

  const root = document.getElementById('gantry-viewer');
  const fieldset = document.querySelector('fieldset.question-localisation:not([disabled])');
  if (!root || !fieldset) {
    return;
  }
  const input = (name) => fieldset.querySelector(`[data-localise="${name}"]`);
  const labels = JSON.parse(document.getElementById('viewer-data').textContent).labels;

  function attach(viewer) {
    viewer.onImageClick(({x, y, timepoint}) => {
      input('image').value = String(timepoint);
      input('x').value = x.toFixed(2);
      input('y').value = y.toFixed(2);
      input('mark').textContent =
        `Marked: ${labels[timepoint]} at (${Math.round(x)}, ${Math.round(y)})`;
      root.dataset.marked = `${timepoint}:${x.toFixed(2)}:${y.toFixed(2)}`;
    });
  }

  // Deferred scripts run in page order: viewer-init.js has mounted the viewer by now.
  const viewer = window.GantryViewer.get(root);
  if (viewer) {
    attach(viewer);
  }
})();
