/*
 * Mounts the viewer rendered by templates/cases/_viewer.html. An external file because the
 * content-security policy allows no inline script: the page hands over its data in the
 * <script type="application/json" id="viewer-data"> block made by Django's json_script filter:
 * {"studies": [{"label", "series": [{"key", "label", "imageIds"}]}]} or the flat
 * {"imageIds", "labels"} of one image per timepoint; optional "layout" (docs/viewer.md).
 */
(function () {
  'use strict';

  const root = document.getElementById('gantry-viewer');
  const dataNode = document.getElementById('viewer-data');
  if (!root || !dataNode) {
    return;
  }
  const data = JSON.parse(dataNode.textContent);
  const empty = data.studies ? data.studies.length === 0 : (data.imageIds || []).length === 0;
  if (empty) {
    root.textContent = 'This case has no images.';
    return;
  }
  try {
    window.GantryViewer.mount(root, {...data, csrfToken: root.dataset.csrfToken});
  } catch (error) {
    root.textContent = `The viewer cannot show these images: ${error.message}`;
    root.dataset.error = error.message;
  }
})();
