"""Progression series and sample grids from a generator briefly trained on the toy cohort.

Severity is read from the generated lesion mask (the model's second channel): the toy
cohort's lesion is a disc whose area grows with severity, so a series that follows its
requested severity has a growing mask.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from PIL import Image

from genworker.checkpoint import LoadedGenerator, load_generator
from genworker.metrics import identity_preservation
from genworker.networks import z_from_seed
from genworker.sampling import (
    PROGRESSION_METHODS,
    SeriesSpec,
    progression_batch,
    progression_series,
    sample_grid,
    save_grid_png,
    synthesize,
)

SEVERITIES = np.linspace(0.0, 1.0, 6)
N_SERIES = 8


@pytest.fixture(scope="module")
def toy(toy_training) -> LoadedGenerator:
    return load_generator(toy_training.result.export_path)


def series_of(loaded, method, *, seed=5, n=N_SERIES, severities=SEVERITIES):
    z = z_from_seed(seed, n, loaded.generator.z_dim)
    return [
        progression_series(
            loaded, z=z[i], finding="lesion", severities=severities, age=50.0, sex="F",
            method=method,
        )
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("method", PROGRESSION_METHODS)
def test_the_lesion_grows_with_severity_along_each_series(toy, method):
    areas = np.array([series.masks.sum(axis=(1, 2)) for series in series_of(toy, method)])
    growing = np.all(np.diff(areas, axis=1) >= 0, axis=1) & (areas[:, -1] > areas[:, 0])
    assert growing.mean() >= 0.75, areas
    rank_correlations = [scipy.stats.spearmanr(SEVERITIES, row).statistic for row in areas]
    assert np.mean(rank_correlations) >= 0.8, areas
    assert (areas[:, -1] - areas[:, 0]).mean() >= 5, areas  # pixels of 256


@pytest.mark.parametrize("method", PROGRESSION_METHODS)
def test_a_series_keeps_its_identity_outside_the_lesion(toy, method):
    series = series_of(toy, method)
    images = np.stack([s.images for s in series])  # [S, T, R, R]
    masks = np.stack([s.masks for s in series])
    # The same timepoints with a different identity at each step: what losing it looks like.
    rows = (np.arange(N_SERIES)[:, None] + np.arange(len(SEVERITIES))[None]) % N_SERIES
    steps = np.arange(len(SEVERITIES))[None]
    within = identity_preservation(images, masks)
    across = identity_preservation(images[rows, steps], masks[rows, steps])
    # Bars that every training seed 0-5 of the toy model cleared (tests/toy_training.py).
    assert within > 0.85
    assert within > across + 0.3


def test_the_direction_method_walks_w_along_the_stored_direction(toy):
    severities = [0.2, 0.5, 0.9]
    (series,) = series_of(toy, "direction", n=1, severities=severities)
    shifts = series.w - series.w[0]  # [T, w_dim]
    expected = (np.asarray(severities) - 0.2)[:, None] * toy.directions["lesion"][None]
    np.testing.assert_allclose(shifts, expected, atol=1e-5)
    np.testing.assert_array_equal(series.severities, np.float32(severities))


def test_a_series_is_deterministic_for_its_identity(toy):
    first = series_of(toy, "condition", n=2)
    torch.manual_seed(99)  # the global torch RNG must not matter
    again = series_of(toy, "condition", n=2)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.masks, b.masks)
        np.testing.assert_array_equal(a.w, b.w)
    assert np.abs(first[0].images - first[1].images).mean() > 0.01  # identities differ


def test_a_sample_grid_has_identities_as_rows_and_severities_as_columns(toy):
    grid = sample_grid(toy, "lesion", n_identities=3, severities=[0.0, 0.5, 1.0, 0.25], seed=7)
    assert grid.shape == (3, 4, 16, 16)
    assert grid.dtype == np.float32
    assert grid.min() >= 0
    assert grid.max() <= 1
    z = z_from_seed(7, 3, toy.generator.z_dim)
    row = progression_series(
        toy, z=z[2], finding="lesion", severities=[0.0, 0.5, 1.0, 0.25], age=50.0, sex="F"
    )
    np.testing.assert_allclose(grid[2], row.images, atol=1e-5)  # batched with the other rows
    again = sample_grid(toy, "lesion", n_identities=3, severities=[0.0, 0.5, 1.0, 0.25], seed=7)
    np.testing.assert_array_equal(again, grid)
    other = sample_grid(toy, "lesion", n_identities=3, severities=[0.0, 0.5, 1.0, 0.25], seed=8)
    assert np.abs(other - grid).mean() > 0.01


@pytest.mark.parametrize("method", PROGRESSION_METHODS)
def test_series_sampled_together_match_series_sampled_alone(toy, method):
    z = z_from_seed(3, 5, toy.generator.z_dim)
    specs = [
        SeriesSpec(z[i], "lesion", SEVERITIES[: 2 + i], 30.0 + 10 * i, "FM"[i % 2], 0.8, method)
        for i in range(5)
    ]
    toy.max_batch = 7  # slices that cut through series
    together = progression_batch(toy, specs)
    for spec, series in zip(specs, together, strict=True):
        alone = progression_series(
            toy, z=spec.z, finding="lesion", severities=spec.severities, age=spec.age,
            sex=spec.sex, truncation=spec.truncation, method=method,
        )  # fmt: skip
        assert series.images.shape == (len(spec.severities), 16, 16)
        np.testing.assert_allclose(series.images, alone.images, atol=1e-5)
        np.testing.assert_allclose(series.w, alone.w, atol=1e-6)


class RunsOutOfMemoryAbove:
    """The toy generator on a device that holds at most ``limit`` images per call."""

    def __init__(self, generator, limit):
        self.generator, self.limit, self.calls = generator, limit, []

    def synthesis(self, ws):
        self.calls.append(len(ws))
        if len(ws) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.generator.synthesis(ws)


def test_a_batch_that_runs_out_of_memory_is_retried_at_half_the_size(toy):
    z = torch.from_numpy(z_from_seed(1, 10, toy.generator.z_dim))
    cond = torch.from_numpy(toy.generator.schema.encode("lesion", np.full(10, 0.5), 50.0, "F"))
    with torch.no_grad():
        ws = toy.generator.mapping(z, cond)
        device = RunsOutOfMemoryAbove(toy.generator, limit=3)
        out, fitted = synthesize(device.synthesis, ws, max_batch=16)
        expected = toy.generator.synthesis(ws)
    assert fitted == 2
    assert device.calls == [10, 8, 4, 2, 2, 2, 2, 2]  # slices of ten images
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_a_generator_that_cannot_take_one_image_fails_with_the_memory_error(toy):
    ws = torch.zeros(2, toy.generator.num_ws, toy.generator.w_dim)
    with pytest.raises(torch.OutOfMemoryError):
        synthesize(RunsOutOfMemoryAbove(toy.generator, limit=0).synthesis, ws, max_batch=4)


def test_save_grid_png_tiles_the_grid_with_black_padding(tmp_path):
    grid = np.random.default_rng(0).uniform(0, 1, (2, 3, 5, 4)).astype(np.float32)
    path = save_grid_png(grid, tmp_path / "out" / "grid.png", padding=2)
    picture = np.asarray(Image.open(path))
    assert picture.shape == (2 * 7 + 2, 3 * 6 + 2)  # rows, columns of pixels
    assert picture.dtype == np.uint8
    top, left = 2 + 1 * 7, 2 + 2 * 6  # tile (1, 2)
    np.testing.assert_array_equal(
        picture[top : top + 5, left : left + 4], np.rint(grid[1, 2] * 255).astype(np.uint8)
    )
    assert not picture[:2].any()  # top padding
    assert not picture[:, :2].any()  # left padding
    assert not picture[2 + 5 : 2 + 7].any()  # padding between the two rows


def test_bad_requests_are_refused(toy):
    z = z_from_seed(0, 1, toy.generator.z_dim)[0]
    request = {"finding": "lesion", "severities": [0.0, 1.0], "age": 50.0, "sex": "F"}
    with pytest.raises(ValueError, match="z must have shape"):
        progression_series(toy, z=z[:-1], **request)
    with pytest.raises(ValueError, match="method must be one of"):
        progression_series(toy, z=z, method="interpolate", **request)
    without = LoadedGenerator(toy.generator, toy.card, {}, toy.sha256)
    with pytest.raises(KeyError, match="no severity direction for 'lesion'"):
        progression_series(without, z=z, method="direction", **request)
    with pytest.raises(ValueError, match="not one of this model's findings"):
        progression_series(toy, z=z, **{**request, "finding": "effusion"})
