"""The lesion renderer's pixel and contrast terms: they judge the change a rendered latent
makes in a window of pixels around the lesion, and only there."""

import numpy as np
import pytest
import torch

from genworker.latent.autoencoder import Autoencoder, AutoencoderConfig
from genworker.latent.renderer import (
    PIXEL_WINDOW,
    RendererConfig,
    RendererData,
    contrast_error,
    decode_windows,
    lesion_windows,
    pixel_change_l1,
    train_renderer,
)

GRID = 32


def _maps_with_a_lesion_at(row: int, column: int) -> torch.Tensor:
    maps = torch.zeros(1, 1, 4 * GRID, 4 * GRID)
    maps[0, 0, row - 3 : row + 4, column - 3 : column + 4] = 1.0
    return maps


def test_the_window_is_centred_on_the_lesion_and_kept_inside_the_grid():
    middle = lesion_windows(_maps_with_a_lesion_at(64, 64), GRID, PIXEL_WINDOW)
    corner = lesion_windows(_maps_with_a_lesion_at(120, 4), GRID, PIXEL_WINDOW)
    assert middle.tolist() == [[16 - PIXEL_WINDOW // 2] * 2]
    assert corner.tolist() == [[GRID - PIXEL_WINDOW, 0]]


def test_a_change_outside_the_lesion_window_does_not_move_the_pixel_term():
    torch.manual_seed(0)
    config = AutoencoderConfig(image_channels=1, anatomy_channels=0, widths=(4, 8, 8, 8))
    autoencoder = Autoencoder(config).eval()
    normal = torch.randn(1, config.latent_channels, GRID, GRID)
    rendered = normal + 0.5 * torch.randn_like(normal)
    maps = _maps_with_a_lesion_at(20, 20)  # the window spans pixels 0-95
    change = torch.zeros(1, 1, 8 * GRID, 8 * GRID)
    change[0, 0, 36:44, 36:44] = 0.3
    corners = lesion_windows(maps, GRID, PIXEL_WINDOW)
    with torch.no_grad():
        after = decode_windows(autoencoder, rendered, corners)
        before = decode_windows(autoencoder, normal, corners)
    near = pixel_change_l1(after, before, change, corners)
    far_away = change.clone()
    far_away[0, 0, 200:230, 200:230] = 0.5
    assert pixel_change_l1(after, before, far_away, corners) == near
    missed = change.clone()
    missed[0, 0, 40:48, 40:48] = 0.0  # part of the lesion's change the latent must make
    assert pixel_change_l1(after, before, missed, corners) != near


def test_the_contrast_term_asks_for_the_lesion_against_its_surround_not_each_pixel():
    torch.manual_seed(0)
    config = AutoencoderConfig(image_channels=1, anatomy_channels=0, widths=(4, 8, 8, 8))
    autoencoder = Autoencoder(config).eval()
    grid = PIXEL_WINDOW  # the window is the whole grid: decoded as a whole image is
    rendered = torch.randn(1, config.latent_channels, grid, grid)
    maps = torch.zeros(1, 1, 4 * grid, 4 * grid)
    maps[0, 0, 20:28, 20:28] = 1.0
    mask = torch.zeros(1, 1, 8 * grid, 8 * grid)
    mask[0, 0, 40:56, 40:56] = 1.0
    corners = lesion_windows(maps, grid, PIXEL_WINDOW)
    with torch.no_grad():
        drawn = decode_windows(autoencoder, rendered, corners)

    def error(image: torch.Tensor) -> float:
        return contrast_error(drawn, image, mask, corners, 4).item()

    as_drawn = error(drawn)
    darker_lesion = drawn - 0.2 * mask
    darker_everywhere = drawn.clone()
    darker_everywhere[..., 20:76, 20:76] -= 0.2  # the lesion and its ring alike
    assert as_drawn < 1e-5
    assert 0.9 < error(darker_lesion) < 1.1  # nearly all of a contrast of about 0.2 missed
    assert abs(error(darker_everywhere) - as_drawn) < 1e-4


def test_a_contrast_weight_without_masks_to_measure_it_is_refused(tmp_path):
    grid = 8
    data = RendererData(
        normal=np.zeros((1, 8, grid, grid), np.float32),
        target=np.zeros((1, 8, grid, grid), np.float32),
        maps=np.zeros((1, 7, 4 * grid, 4 * grid), np.float16),
        track=np.zeros(1, int),
    )
    with pytest.raises(ValueError, match="contrast term needs"):
        train_renderer(
            data,
            RendererConfig(latent_channels=8, map_channels=7),
            out_dir=tmp_path,
            steps=1,
            contrast_weight=3.0,
        )


def test_on_redraws_the_lesion_a_target_adds_stays_what_the_simulation_added():
    rng = np.random.default_rng(0)
    normal = rng.standard_normal((2, 4, GRID, GRID)).astype(np.float32)
    target = rng.standard_normal((3, 4, GRID, GRID)).astype(np.float32)
    track = np.array([0, 1, 1])
    data = RendererData(
        normal=normal,
        target=target,
        maps=np.zeros((3, 1, 4 * GRID, 4 * GRID), np.float16),
        track=track,
    )
    redrawn = rng.standard_normal(normal.shape).astype(np.float32)
    moved = data.on_redraws(redrawn)
    assert moved.normal is redrawn
    np.testing.assert_allclose(
        moved.target - moved.normal[track], target - normal[track], rtol=0, atol=1e-5
    )
    assert moved.maps is data.maps
    assert data.normal is normal  # the original stays as it was
