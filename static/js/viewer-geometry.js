/*
 * Gantry viewer geometry: pure functions over DICOM header values, no DOM and no Cornerstone.
 * static/js/viewer.js uses them; browser tests call them directly (window.GantryViewerGeometry).
 *
 * Patient directions follow DICOM's patient coordinate system (LPS): +x towards the patient's
 * left, +y towards posterior, +z towards the head. Markers use R/L, A/P and S/I.
 */
(function () {
  'use strict';

  // A direction cosine component at least this large (about 14.5 degrees of obliquity) adds
  // its letter after the dominant one: [0.94, 0.34, 0] is "LP", [0.98, 0.17, 0] just "L".
  const OBLIQUE_COMPONENT = 0.25;
  const AXIS_LETTERS = [['R', 'L'], ['A', 'P'], ['I', 'S']];
  const OPPOSITE = {R: 'L', L: 'R', A: 'P', P: 'A', S: 'I', I: 'S', H: 'F', F: 'H'};
  // PatientOrientation (0020,0020) writes head/foot as H/F; markers say S/I.
  const DISPLAY_LETTER = {H: 'S', F: 'I'};

  /** Letters naming the patient direction of a unit vector [x, y, z], dominant axis first. */
  function directionLetters(vector) {
    const axes = [0, 1, 2]
      .map((axis) => ({axis, value: Number(vector[axis])}))
      .filter((component) => Number.isFinite(component.value) && component.value !== 0)
      .sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
    if (axes.length === 0) {
      return '';
    }
    return axes
      .filter((component, rank) => rank === 0 || Math.abs(component.value) >= OBLIQUE_COMPONENT)
      .map((component) => AXIS_LETTERS[component.axis][component.value > 0 ? 1 : 0])
      .join('');
  }

  /** The letters of the opposite direction: "LP" -> "RA". */
  function oppositeLetters(letters) {
    return Array.from(letters, (letter) => OPPOSITE[letter] || '').join('');
  }

  function displayLetters(letters) {
    return Array.from(letters, (letter) => DISPLAY_LETTER[letter] || letter).join('');
  }

  function parseNumbers(value, count) {
    if (value === undefined || value === null || value === '') {
      return null;
    }
    const numbers = String(value).split('\\').map((part) => Number(part.trim()));
    if (numbers.length !== count || numbers.some((n) => !Number.isFinite(n))) {
      return null;
    }
    return numbers;
  }

  /**
   * The patient direction at each edge of an image as stored (column 0 on the left, row 0 on
   * top), or null when the header gives none.
   *
   * `header.imageOrientationPatient`: the (0020,0037) string "rx\ry\rz\cx\cy\cz", the
   * directions of increasing column (to the right) and increasing row (down).
   * `header.patientOrientation`: the (0020,0020) string "ROW\COLUMN" of a projection image,
   * used when there is no ImageOrientationPatient.
   */
  function orientationMarkers(header) {
    const cosines = parseNumbers(header.imageOrientationPatient, 6);
    let right = null;
    let bottom = null;
    if (cosines) {
      right = directionLetters(cosines.slice(0, 3));
      bottom = directionLetters(cosines.slice(3, 6));
    } else if (header.patientOrientation) {
      const parts = String(header.patientOrientation).split('\\').map((p) => p.trim());
      if (parts.length === 2 && parts.every((p) => /^[APRLHF]+$/.test(p))) {
        [right, bottom] = parts;
      }
    }
    if (!right || !bottom) {
      return null;
    }
    return {
      left: displayLetters(oppositeLetters(right)),
      right: displayLetters(right),
      top: displayLetters(oppositeLetters(bottom)),
      bottom: displayLetters(bottom),
    };
  }

  /**
   * Millimetres between pixel centres, {row, column, source}, from PixelSpacing (0028,0030)
   * or, where it is absent (projection radiographs), ImagerPixelSpacing (0018,1164); null when
   * neither holds two positive numbers. DICOM orders both as "row spacing\column spacing":
   * the first is the distance between rows (vertical), the second between columns.
   */
  function pixelSpacing(header) {
    const candidates = [
      ['PixelSpacing', header.pixelSpacing],
      ['ImagerPixelSpacing', header.imagerPixelSpacing],
    ];
    for (const [source, value] of candidates) {
      const numbers = parseNumbers(value, 2);
      if (numbers && numbers[0] > 0 && numbers[1] > 0) {
        return {row: numbers[0], column: numbers[1], source};
      }
    }
    return null;
  }

  /** Distance in mm between two image points {x: column, y: row}; null without spacing. */
  function distanceMm(a, b, spacing) {
    if (!spacing) {
      return null;
    }
    return Math.hypot((b.x - a.x) * spacing.column, (b.y - a.y) * spacing.row);
  }

  /**
   * The patient coordinates (mm) of an image point {x, y} given in Cornerstone's pixel
   * coordinates, where pixel (0, 0) covers [0, 1) x [0, 1) and its centre, the point
   * ImagePositionPatient locates, is (0.5, 0.5). Null without position, orientation or spacing.
   */
  function patientPoint(point, header, spacing) {
    const position = parseNumbers(header.imagePositionPatient, 3);
    const cosines = parseNumbers(header.imageOrientationPatient, 6);
    if (!position || !cosines || !spacing) {
      return null;
    }
    const across = (point.x - 0.5) * spacing.column;
    const down = (point.y - 0.5) * spacing.row;
    return [0, 1, 2].map((i) => position[i] + across * cosines[i] + down * cosines[i + 3]);
  }

  /**
   * The viewer's data in one shape: {studies: [{label, series: [{key, label, imageIds}]}]}.
   * Accepts that shape, or the flat {imageIds, labels} of one single-image series per study.
   * Throws an Error naming the problem when the data is neither.
   */
  function normaliseStudies(data) {
    if (data && Array.isArray(data.imageIds)) {
      const labels = Array.isArray(data.labels) ? data.labels : [];
      return data.imageIds.map((imageId, index) => ({
        label: labels[index] || `Timepoint ${index + 1}`,
        series: [{key: '1', label: '', imageIds: [imageId]}],
      }));
    }
    if (!data || !Array.isArray(data.studies)) {
      throw new Error('viewer data needs "studies" or "imageIds"');
    }
    return data.studies.map((study, index) => {
      if (!study || !Array.isArray(study.series)) {
        throw new Error(`study ${index} has no "series" list`);
      }
      return {
        label: study.label || `Timepoint ${index + 1}`,
        series: study.series.map((series, position) => {
          if (!series || !Array.isArray(series.imageIds) || series.imageIds.length === 0) {
            throw new Error(`series ${position} of study ${index} has no imageIds`);
          }
          return {
            key: String(series.key === undefined ? position + 1 : series.key),
            label: series.label || '',
            imageIds: series.imageIds.slice(),
          };
        }),
      };
    });
  }

  /** Series keys in order of first appearance, each with the first label given for it. */
  function seriesKeys(studies) {
    const keys = new Map();
    for (const study of studies) {
      for (const series of study.series) {
        if (!keys.has(series.key)) {
          keys.set(series.key, series.label || `Series ${series.key}`);
        }
      }
    }
    return Array.from(keys, ([key, label]) => ({key, label}));
  }

  /**
   * The first study of the shown window of `shown` consecutive studies out of `count`: the
   * window that contains `current` and moves as little as possible from `previousFirst`.
   */
  function windowStart(current, shown, count, previousFirst) {
    const last = Math.max(0, count - shown);
    let first = Math.max(0, Math.min(last, previousFirst));
    if (current < first) {
      first = current;
    } else if (current >= first + shown) {
      first = current - shown + 1;
    }
    return Math.max(0, Math.min(last, first));
  }

  /**
   * The hanging layout: which study and series each cell shows, row by row.
   * With several series shown, series go across (one column each) and studies down (prior
   * above current); with one series, studies go across, side by side.
   * Returns {rows, columns, cells: [{study, key}]}.
   */
  function hangingCells(firstStudy, studiesShown, keys) {
    const studies = Array.from({length: studiesShown}, (_, i) => firstStudy + i);
    if (keys.length === 1) {
      return {
        rows: 1,
        columns: studies.length,
        cells: studies.map((study) => ({study, key: keys[0]})),
      };
    }
    const cells = [];
    for (const study of studies) {
      for (const key of keys) {
        cells.push({study, key});
      }
    }
    return {rows: studies.length, columns: keys.length, cells};
  }

  const api = {
    OBLIQUE_COMPONENT,
    directionLetters,
    oppositeLetters,
    orientationMarkers,
    pixelSpacing,
    distanceMm,
    patientPoint,
    normaliseStudies,
    seriesKeys,
    windowStart,
    hangingCells,
  };
  window.GantryViewerGeometry = api;
})();
