"""Shared image operations of the cohort simulators."""

from __future__ import annotations

import numpy as np

from genworker.cohorts.anatomy import ct_body, largest_piece


def test_largest_piece_keeps_the_biggest_connected_piece():
    mask = np.zeros((10, 10), bool)
    mask[1:6, 1:6] = True  # 25 pixels
    mask[8, 8:10] = True  # 2 pixels, apart
    kept = largest_piece(mask)
    assert kept.sum() == 25
    assert not kept[8, 8]


def test_a_ct_body_drops_the_table_and_fills_the_lungs():
    hu = np.full((3, 24, 24), -1000.0, np.float32)
    hu[:, 2:16, 3:21] = 40.0  # soft tissue
    hu[:, 5:12, 6:11] = -850.0  # a lung inside it
    hu[:, 19:21, :] = 300.0  # the table, apart from the patient
    body = ct_body(hu)
    assert body[:, 5:12, 6:11].all()  # the lung is inside the body
    assert not body[:, 19:21].any()  # the table is not
    assert body.sum() == 3 * 14 * 18
