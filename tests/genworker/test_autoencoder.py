"""The autoencoder's decode: images within the display range, anatomy maps as drawn (a chest's
lung thickness in decimetres passes 1 at the bases, and the planner needs it whole)."""

import torch
from torch import nn

from genworker.latent.autoencoder import Autoencoder, AutoencoderConfig


class _Drawn(nn.Module):
    """A decoder stand-in that draws fixed values: image 1.5, lung 1.9 dm, then -0.2."""

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        n = latent.shape[0]
        values = torch.tensor([1.5, 1.9, -0.2]).view(1, 3, 1, 1)
        return values.expand(n, 3, 8, 8)


def test_decode_keeps_images_in_range_and_anatomy_unbounded_above():
    config = AutoencoderConfig(image_channels=1, anatomy_channels=2, widths=(4, 8))
    autoencoder = Autoencoder(config)
    autoencoder.decoder = _Drawn()
    images, anatomy = autoencoder.decode(torch.zeros(2, config.latent_channels, 4, 4))
    assert images.shape == (2, 1, 8, 8)
    assert anatomy.shape == (2, 2, 8, 8)
    assert torch.all(images == 1.0)
    assert torch.allclose(anatomy[:, 0], torch.tensor(1.9))
    assert torch.all(anatomy[:, 1] == 0.0)
