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
    """Shift each chosen sample by whole pixels, filling with -1. Indexing into a padded
    copy, not ``grid_sample``: R1 differentiates the discriminator's gradient through this,
    and CUDA has no second derivative for ``grid_sample``."""
    n, _, h, w = images.shape
    max_shift = max(1, round(MAX_SHIFT * h))
    shift = torch.randint(-max_shift, max_shift + 1, (n, 2), device=images.device)
    shift = shift * _chosen(n, p, images.device).long()[:, None]  # [n, 2] pixels (y, x)
    padded = F.pad(images, [max_shift] * 4, value=-1.0)  # [n, c, h + 2m, w + 2m]
    # out[y, x] = images[y - shift_y, x - shift_x], i.e. padded[y - shift_y + m, ...]
    rows = torch.arange(h, device=images.device) - shift[:, :1] + max_shift  # [n, h]
    cols = torch.arange(w, device=images.device) - shift[:, 1:] + max_shift  # [n, w]
    sample = torch.arange(n, device=images.device)[:, None, None]
    return padded[sample, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


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
