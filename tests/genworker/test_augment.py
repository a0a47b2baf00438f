"""Differentiable augmentation: what the discriminator sees, and that R1 can differentiate it."""

import torch

from genworker.augment import MAX_SHIFT, _translate, augment


def _shift(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """image [c, h, w] moved down dy and right dx pixels, uncovered pixels -1."""
    _, h, w = image.shape
    out = torch.full_like(image, -1.0)
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_translation_moves_image_and_mask_together_by_whole_pixels():
    torch.manual_seed(1)
    images = torch.rand(32, 2, 16, 16) * 2 - 1
    torch.manual_seed(2)
    translated = _translate(images, 1.0)
    reach = max(1, round(MAX_SHIFT * 16))
    shifts = [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)]
    moved = 0
    for image, result in zip(images, translated, strict=True):
        (match,) = [s for s in shifts if torch.equal(_shift(image, *s), result)]
        moved += match != (0, 0)
    assert moved > 24  # each sample draws its own shift; (0, 0) is one of 25


def test_r1_penalty_differentiates_through_augmentation():
    """R1 takes the gradient of the discriminator's gradient with respect to the real images;
    the augmentation sits between them, so it must have a correct second derivative."""
    images = torch.rand(2, 2, 8, 8, dtype=torch.float64, requires_grad=True)

    def augmented(x: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(3)  # the same transforms on every call
        return augment(x, 1.0).square()

    assert torch.autograd.gradgradcheck(augmented, (images,))
