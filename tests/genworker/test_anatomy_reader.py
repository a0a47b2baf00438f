"""The anatomy reader: it learns a map from the image, weighs a field's edge again, and
replaces only the maps it reads."""

from __future__ import annotations

import numpy as np
import torch

from genworker.latent.anatomy_reader import (
    AnatomyReader,
    AnatomyReaderConfig,
    field_edges,
    train_anatomy_reader,
)

SMALL = AnatomyReaderConfig(image_channels=1, channels=(1,), widths=(8, 16))


def _subjects(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images of a bright disc of random size and place, and maps whose channel 1 is the
    disc's thickness (the image shows it) beside two channels of noise (it does not)."""
    rows, cols = np.mgrid[:32, :32]
    images = np.zeros((n, 1, 32, 32), np.float32)
    maps = rng.uniform(0, 1, (n, 3, 32, 32)).astype(np.float32)
    for i in range(n):
        centre, radius = rng.uniform(10, 22, 2), rng.uniform(4, 9)
        disc = np.hypot(rows - centre[0], cols - centre[1]) < radius
        images[i, 0] = 0.2 + 0.6 * disc
        maps[i, 1] = 0.5 * disc
    return images, maps


def test_the_edge_band_lies_along_where_a_map_crosses_its_level():
    maps = np.zeros((1, 40, 40), np.float32)
    maps[0, 10:30, 10:30] = 1.0
    band = field_edges(maps, 0.5)[0]
    assert band[[7, 10, 12], 20].all()  # 3 px out, on the edge, 2 px in
    assert not band[20, 20]  # the field's middle
    assert not band[2, 20]  # far outside


def test_training_teaches_the_reader_the_map_the_image_shows(tmp_path):
    torch.set_num_threads(1)
    images, maps = _subjects(np.random.default_rng(0), 64)
    test_images, test_maps = _subjects(np.random.default_rng(1), 16)

    def error(reader: AnatomyReader) -> float:
        with torch.no_grad():
            read = reader(torch.from_numpy(test_images))[:, 0].numpy()
        return float(np.abs(read - test_maps[:, 1]).mean())

    torch.manual_seed(0)
    untrained = error(AnatomyReader(SMALL))
    reader, progress = train_anatomy_reader(
        images, maps, SMALL, edge_level=0.25, state_path=tmp_path / "state.pt", steps=150
    )
    assert progress.step == 150
    assert error(reader) < 0.5 * untrained
    assert error(reader) < 0.5 * float(np.abs(test_maps[:, 1] - maps[:, 1].mean()).mean())


def test_reading_replaces_only_the_maps_the_reader_reads_and_none_is_negative():
    reader = AnatomyReader(SMALL)
    with torch.no_grad():
        reader.head.bias.fill_(-5.0)  # it reads nothing but negative thickness
    anatomy = np.random.default_rng(2).uniform(0.1, 1, (3, 32, 32)).astype(np.float32)
    given = anatomy.copy()
    read = reader.read(torch.full((1, 1, 32, 32), 0.5), anatomy)
    assert np.all(read[1] == 0.0)
    np.testing.assert_array_equal(read[[0, 2]], given[[0, 2]])
    np.testing.assert_array_equal(anatomy, given)  # the maps given are left as they were
