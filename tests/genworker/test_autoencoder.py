"""The autoencoder's decode: images within the display range, anatomy maps as drawn (a chest's
lung thickness in decimetres passes 1 at the bases, and the planner needs it whole); and the
decoder's polish on lesions, which leaves the encoder and so the latents as they were."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from genworker.latent.autoencoder import (
    Autoencoder,
    AutoencoderConfig,
    AutoencoderData,
    _lesion_corners,
    polish_decoder,
)

SMALL = AutoencoderConfig(image_channels=1, anatomy_channels=1, widths=(4, 8))


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


def _data(lesions: bool = True) -> AutoencoderData:
    """Six random 32² images; image 1 has a small lesion near its left edge."""
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 32, 32), bool)
    masks[1, 20:24, 3:7] = True
    return AutoencoderData(
        images=rng.random((6, 1, 32, 32)).astype(np.float16),
        anatomy=rng.random((6, 1, 32, 32)).astype(np.float16),
        has_anatomy=np.ones(6, bool),
        lesions=masks if lesions else None,
    )


def test_a_lesion_centred_crop_always_holds_its_lesion():
    data = _data()
    rows, tops, lefts = _lesion_corners(data, np.random.default_rng(1), np.array([1]), 20, 16)
    assert set(rows) == {1}
    for row, top, left in zip(rows, tops, lefts, strict=True):
        assert top % 8 == 0  # on the latent grid
        assert left % 8 == 0
        assert data.lesions[row, top : top + 16, left : left + 16].any()


def test_polishing_trains_the_decoder_and_leaves_the_encoder(tmp_path):
    torch.manual_seed(0)
    model = Autoencoder(SMALL)
    model.latent_mean.fill_(0.25)
    before = copy.deepcopy(model.state_dict())
    polished, progress = polish_decoder(
        model, _data(), out_dir=tmp_path, steps=3, lesion_share=0.5, batch_size=4, crop=16
    )
    after = polished.state_dict()
    assert progress.step == 3
    assert (tmp_path / "decoder-state.pt").exists()
    encoder = [name for name in before if not name.startswith("decoder.")]
    assert all(torch.equal(before[name], after[name]) for name in encoder)
    assert torch.all(after["latent_mean"] == 0.25)
    decoder = [name for name in before if name.startswith("decoder.")]
    assert any(not torch.equal(before[name], after[name]) for name in decoder)


def test_polishing_on_lesions_needs_the_lesion_masks(tmp_path):
    with pytest.raises(ValueError, match="lesion masks"):
        polish_decoder(
            Autoencoder(SMALL), _data(lesions=False), out_dir=tmp_path, steps=1, lesion_share=1.0
        )


def test_a_recipe_without_a_polish_keeps_its_decoder_and_records_no_steps(tmp_path):
    model = Autoencoder(SMALL)
    before = copy.deepcopy(model.state_dict())
    polished, progress = polish_decoder(model, _data(), out_dir=tmp_path, steps=0, lesion_share=0.0)
    assert progress.step == 0
    assert torch.load(tmp_path / "decoder-state.pt", weights_only=True)["step"] == 0
    after = polished.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
