"""The lesion gain: fitted so that the lesion's contrast in the image is the simulation's,
and applied to the renderer's change alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genworker.latent import lesion_gain


def _disc(radius: int, size: int = 64) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    return (rows - size // 2) ** 2 + (cols - size // 2) ** 2 < radius**2


def test_the_gain_multiplies_each_contrasts_change_and_leaves_the_rest_of_the_image():
    gain = lesion_gain.LesionGain(2)
    gain.gain.copy_(torch.tensor([2.0, 0.5]))
    normal = torch.full((1, 2, 8, 8), 0.4)
    drawn = normal.clone()
    drawn[0, :, 2:4, 2:4] = 0.6
    drawn[0, 0, 6, 6] = 0.9  # doubled past the image's range
    made = gain(drawn, normal)
    torch.testing.assert_close(made[0, 0, 2:4, 2:4], torch.full((2, 2), 0.8))
    torch.testing.assert_close(made[0, 1, 2:4, 2:4], torch.full((2, 2), 0.5))
    assert made[0, 0, 6, 6] == 1.0
    unchanged = (drawn == normal).all(dim=1)
    torch.testing.assert_close(made[:, :, unchanged[0]], normal[:, :, unchanged[0]])


def _fit(monkeypatch, images, drawn, patients, masks, channels=("T1", "FLAIR")):
    """Fit on simulated ``images`` with the renderer drawing ``drawn`` on ``patients``."""
    monkeypatch.setattr(lesion_gain, "drawn_images", lambda *_: (drawn, patients))
    n = len(images)
    return lesion_gain.fit_lesion_gain(
        None,
        None,
        None,
        normal_latents=np.zeros((n, 1, 8, 8), np.float32),
        maps=np.zeros((n, 1, 32, 32), np.float32),
        images=images,
        masks=masks,
        bodies=[np.ones((64, 64), bool)] * n,
        ring_px=3,
        channels=channels,
    )


def test_the_gain_brings_the_lesions_contrast_against_its_ring_to_the_simulations(monkeypatch):
    big, small = _disc(12), _disc(4)
    masks = np.stack([big, big, small])
    # The patient is brighter in the mask than around it (0.1 on T1): the lesion's change
    # has to add only what that does not give.
    patients = np.full((3, 2, 64, 64), 0.3, np.float32)
    patients[:, 0][masks] = 0.4
    wanted = np.array([[0.3, -0.2], [0.1, -0.1], [0.5, 0.0]], np.float32)  # against the ring
    images, drawn = np.full_like(patients, 0.3), patients.copy()
    for i, mask in enumerate(masks):
        images[i][:, mask] += wanted[i][:, None]
        drawn[i][:, mask] += (wanted[i] - [0.1, 0.0])[:, None] * [[0.5], [0.8]]
    drawn[2] = patients[2]  # under the size the fit counts: nothing drawn, nothing asked
    fitted, record = _fit(monkeypatch, images, drawn, patients, masks)
    torch.testing.assert_close(fitted.gain, torch.tensor([2.0, 1.25]))
    assert record == {"lesions": 2, "gain": {"T1": 2.0, "FLAIR": 1.25}}
    made = fitted(torch.from_numpy(drawn[:2]), torch.from_numpy(patients[:2])).numpy()
    np.testing.assert_allclose(
        made[:, :, big].mean(axis=2), images[:2, :, big].mean(axis=2), atol=1e-6
    )


def test_a_renderer_that_draws_a_contrast_the_wrong_way_is_refused(monkeypatch):
    mask = _disc(12)
    images = np.zeros((1, 2, 64, 64), np.float32)
    images[0, :, mask] = 0.3
    drawn = images * np.array([1.0, -0.5], np.float32)[None, :, None, None]
    with pytest.raises(ValueError, match="FLAIR change"):
        _fit(monkeypatch, images, drawn, np.zeros_like(images), mask[None])


def test_no_lesion_large_enough_to_fit_on_is_refused(monkeypatch):
    mask = _disc(3)
    images = np.where(mask, 0.3, 0.0).astype(np.float32)[None, None].repeat(2, axis=1)
    with pytest.raises(ValueError, match="no lesion of 100 pixels"):
        _fit(monkeypatch, images, images, np.zeros_like(images), mask[None])
