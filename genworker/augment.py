"""Differentiable augmentation for GAN training on small cohorts (after DiffAugment).

The discriminator sees every image, real or generated, through the same random
transforms, and the generator is trained through them, so the discriminator cannot
memorise the few training images while the generator still learns the clean
distribution. Each transform is applied to each sample with probability ``p``.

Geometric transforms (translation, cutout) move the image and its mask channel
together, so the mask stays aligned. Photometric ones (brightness, contrast) touch
channel 0 only: channel 1 is a {-1, 1} label whose values carry meaning.
Background and filled areas take the value -1 (black, no lesion).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MAX_SHIFT = 0.125  # translation, as a fraction of the image side
CUTOUT_SIZE = 0.5  # side of the cut square, as a fraction of the image side
BRIGHTNESS = 0.2  # added offset drawn from U(-BRIGHTNESS, BRIGHTNESS), on the [-1, 1] scale
CONTRAST = (0.7, 1.4)  # factor around the image mean


def augment(
    images: torch.Tensor,  # [n, c, h, w] in about [-1, 1]; channel 1, if any, is the mask
    p: float,  # probability of applying each transform to each sample
) -> torch.Tensor:  # [n, c, h, w]
    """Randomly translate, cut out, brighten and contrast ``images``, differentiably."""
    if p <= 0:
        return images
    images = _translate(images, p)
    images = _cutout(images, p)
    return _brightness_contrast(images, p)


def _chosen(n: int, p: float, device: torch.device) -> torch.Tensor:
    """Float [n] of 1 where a transform applies to the sample, else 0."""
    return (torch.rand(n, device=device) < p).float()


def _translate(images: torch.Tensor, p: float) -> torch.Tensor:
    n, _, h, w = images.shape
    max_shift = max(1, round(MAX_SHIFT * h))
    shift = torch.randint(-max_shift, max_shift + 1, (n, 2), device=images.device)
    shift = shift * _chosen(n, p, images.device)[:, None]  # [n, 2] whole pixels (y, x)
    # Integer pixel shifts through grid_sample with nearest sampling are exact gathers;
    # grid coordinates span [-1, 1] over the image, so one pixel is 2 / size.
    theta = torch.zeros(n, 2, 3, device=images.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -shift[:, 1] * 2.0 / w
    theta[:, 1, 2] = -shift[:, 0] * 2.0 / h
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # Zero padding of (images + 1) is padding with -1.
    shifted = F.grid_sample(
        images.float() + 1.0, grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    return (shifted - 1.0).to(images.dtype)


def _cutout(images: torch.Tensor, p: float) -> torch.Tensor:
    n, _, h, w = images.shape
    size_y, size_x = max(1, round(CUTOUT_SIZE * h)), max(1, round(CUTOUT_SIZE * w))
    top = torch.randint(0, h - size_y + 1, (n, 1, 1), device=images.device)
    left = torch.randint(0, w - size_x + 1, (n, 1, 1), device=images.device)
    rows = torch.arange(h, device=images.device)[None, :, None]
    cols = torch.arange(w, device=images.device)[None, None, :]
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    cut = inside & _chosen(n, p, images.device).bool()[:, None, None]  # [n, h, w]
    return torch.where(cut[:, None], torch.full_like(images, -1.0), images)


def _brightness_contrast(images: torch.Tensor, p: float) -> torch.Tensor:
    n = len(images)
    device = images.device
    offset = (torch.rand(n, device=device) * 2 - 1) * BRIGHTNESS * _chosen(n, p, device)
    low, high = CONTRAST
    factor = 1 + (low + torch.rand(n, device=device) * (high - low) - 1) * _chosen(n, p, device)
    picture = images[:, :1]  # [n, 1, h, w]
    mean = picture.mean(dim=[1, 2, 3], keepdim=True)
    picture = (picture - mean) * factor[:, None, None, None] + mean + offset[:, None, None, None]
    return torch.cat([picture.to(images.dtype), images[:, 1:]], dim=1)
