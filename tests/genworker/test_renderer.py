"""The lesion renderer's pixel term: it judges the change a rendered latent makes in a
window of pixels around the lesion, and only there."""

import torch

from genworker.latent.autoencoder import Autoencoder, AutoencoderConfig
from genworker.latent.renderer import PIXEL_WINDOW, lesion_windows, pixel_change_l1

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
    near = pixel_change_l1(autoencoder, rendered, normal, change, maps)
    far_away = change.clone()
    far_away[0, 0, 200:230, 200:230] = 0.5
    assert pixel_change_l1(autoencoder, rendered, normal, far_away, maps) == near
    missed = change.clone()
    missed[0, 0, 40:48, 40:48] = 0.0  # part of the lesion's change the latent must make
    assert pixel_change_l1(autoencoder, rendered, normal, missed, maps) != near
