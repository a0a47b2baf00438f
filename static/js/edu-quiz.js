/*
 * Quiz item and practice review pages (templates/edu/attempt_item.html,
 * practice_review.html): a click on the image answers the localisation question. The viewer reports image pixel coordinates and the shown study's
 * index (the same whichever of its aligned contrasts, T1, FLAIR or T1c, was clicked); they
 * go into the question's hidden inputs and are posted with the other answers.
 * Once a localisation answer is revealed, the page's viewer data carries overlays (the
 * lesion's outline, the trainee's mark; edu.views._answer_overlays) drawn on the images.
 */
(function () {
  'use strict';

  const root = document.getElementById('gantry-viewer');
  // Deferred scripts run in page order: viewer-init.js has mounted the viewer by now.
  const viewer = root && window.GantryViewer.get(root);
  if (!viewer) {
    return;
  }
  const data = JSON.parse(document.getElementById('viewer-data').textContent);

  (data.overlays || []).forEach((overlay, index) => {
    viewer.setOverlay(`answer-${index}`, overlay);
  });
  root.dataset.answerOverlays = String((data.overlays || []).length);

  const fieldset = document.querySelector('fieldset.question-localisation:not([disabled])');
  if (!fieldset) {
    return;
  }
  const input = (name) => fieldset.querySelector(`[data-localise="${name}"]`);
  viewer.onImageClick(({x, y, timepoint}) => {
    input('image').value = String(timepoint);
    input('x').value = x.toFixed(2);
    input('y').value = y.toFixed(2);
    input('mark').textContent =
      `Marked: ${data.labels[timepoint]} at (${Math.round(x)}, ${Math.round(y)})`;
    root.dataset.marked = `${timepoint}:${x.toFixed(2)}:${y.toFixed(2)}`;
    viewer.setOverlay('mark', {
      study: timepoint,
      shapes: [{type: 'point', x, y, label: 'your mark', color: '#4aa3ff'}],
    });
  });
})();
