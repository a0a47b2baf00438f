/*
 * Mounts the viewer rendered by templates/cases/_viewer.html. An external file because the
 * content-security policy allows no inline script: the page hands over its data in the
 * <script type="application/json" id="viewer-data"> block made by Django's json_script filter.
 */
(function () {
  'use strict';

  const root = document.getElementById('gantry-viewer');
  const dataNode = document.getElementById('viewer-data');
  if (!root || !dataNode) {
    return;
  }
  const data = JSON.parse(dataNode.textContent);
  if (data.imageIds.length === 0) {
    root.textContent = 'This case has no images.';
    return;
  }
  window.GantryViewer.mount(root, {
    imageIds: data.imageIds,
    labels: data.labels,
    csrfToken: root.dataset.csrfToken,
  });
})();
