"""Compiled synthesis: the same images as eager synthesis, at padded batch shapes."""

import numpy as np
import pytest

from genworker.checkpoint import LoadedGenerator, load_generator
from genworker.compiled import CompiledSynthesis, padded_size
from genworker.networks import z_from_seed
from genworker.sampling import SeriesSpec, progression_batch


@pytest.fixture
def toy(toy_training) -> LoadedGenerator:
    return load_generator(toy_training.result.export_path)


def test_slices_are_padded_to_the_next_power_of_two():
    assert [padded_size(n) for n in (1, 2, 3, 4, 5, 8, 9, 256)] == [1, 2, 4, 4, 8, 8, 16, 256]
    with pytest.raises(ValueError, match="at least one image"):
        padded_size(0)


def test_compiled_sampling_matches_eager_sampling(toy):
    z = z_from_seed(1, 1, toy.generator.z_dim)[0]
    spec = SeriesSpec(z, "lesion", [0.1, 0.5, 0.9], 50, "F")
    toy.max_batch = 4
    (eager,) = progression_batch(toy, [spec])
    toy.compile()  # on the CPU: one graph for any batch size
    (compiled,) = progression_batch(toy, [spec])
    assert toy.synthesis.shapes == {4, 3}  # compile's warm-up at max_batch, then the series
    _assert_close(compiled, eager)


def test_padded_compiled_synthesis_runs_fixed_shapes_and_drops_the_padding(toy):
    z = z_from_seed(1, 1, toy.generator.z_dim)[0]
    spec = SeriesSpec(z, "lesion", [0.1, 0.5, 0.9], 50, "F")
    (eager,) = progression_batch(toy, [spec])
    toy.synthesis = CompiledSynthesis(toy.generator, pad=True)  # as on CUDA, for CUDA graphs
    (padded,) = progression_batch(toy, [spec])  # three images, run as four
    assert toy.synthesis.shapes == {4}
    assert padded.images.shape == eager.images.shape
    _assert_close(padded, eager)


def _assert_close(series, eager):
    np.testing.assert_allclose(series.images, eager.images, atol=1e-4)
    assert series.masks is not None
    assert (series.masks != eager.masks).mean() < 0.01  # a boundary pixel may round over
