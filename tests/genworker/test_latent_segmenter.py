"""The segmenter's training losses: lesion and background pixels weigh alike in the
cross-entropy, and images without a lesion answer to it only, so a network is not taught
that finding no small lesion is safest. That weighting raises the logit a lesion is best
called at, which training calibrates and the network keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genworker.latent.segmenter import (
    THRESHOLDS,
    Segmenter,
    SegmenterConfig,
    SegmenterData,
    calibrate_threshold,
    segmentation_losses,
    train_segmenter,
)

R = 32


def _nodule() -> torch.Tensor:
    mask = torch.zeros(R, R)
    mask[10:13, 20:23] = 1.0  # nine pixels: a small lesion
    return mask


def test_an_image_without_a_lesion_adds_no_dice_term():
    logits = torch.full((2, R, R), -4.0)
    logits[1, 10:13, 20:23] = 4.0  # the second image finds its lesion
    masks = torch.stack([torch.zeros(R, R), _nodule()])
    logits[0, 0:3, 0:3] = 4.0  # a false positive on the empty image
    bce, soft_dice = segmentation_losses(logits, masks)
    _, lesion_only = segmentation_losses(logits[1:], masks[1:])
    assert soft_dice == pytest.approx(lesion_only.item())
    assert bce > segmentation_losses(logits[1:], masks[1:])[0]  # the false positive costs here


def test_finding_a_small_lesion_lowers_the_loss_below_finding_nothing():
    masks = torch.stack([torch.zeros(R, R), torch.zeros(R, R), _nodule()])
    nothing = torch.full((3, R, R), -8.0)
    found = nothing.clone()
    found[2, 10:13, 20:23] = 8.0

    def total(logits: torch.Tensor) -> float:
        bce, soft_dice = segmentation_losses(logits, masks)
        return float(bce + (1 - soft_dice))

    assert total(found) < total(nothing) - 0.5


def test_a_batch_without_lesions_has_a_perfect_dice_and_a_cross_entropy():
    bce, soft_dice = segmentation_losses(torch.full((2, R, R), -4.0), torch.zeros(2, R, R))
    assert soft_dice == 1.0
    assert 0 < bce < 0.05


def test_a_missed_small_lesion_costs_as_much_cross_entropy_as_a_missed_large_one():
    small, large = _nodule(), torch.zeros(R, R)
    large[4:28, 4:28] = 1.0
    nothing = torch.full((1, R, R), -4.0)
    missed_small, _ = segmentation_losses(nothing, small[None])
    missed_large, _ = segmentation_losses(nothing, large[None])
    assert missed_small == pytest.approx(missed_large.item())
    assert missed_small > 2.0  # half of -log(sigmoid(-4)) ≈ 4.02, however few its pixels


def test_a_missed_nodule_beside_a_found_effusion_weighs_as_much_as_the_effusion():
    effusion = torch.zeros(R, R)
    effusion[16:, :] = 1.0  # half the image
    masks = torch.stack([effusion, _nodule()])
    found_both = torch.where(masks > 0.5, 4.0, -4.0)
    missed_nodule = found_both.clone()
    missed_nodule[1] = -4.0
    missed_effusion = found_both.clone()
    missed_effusion[0] = -4.0
    cost_nodule = (
        segmentation_losses(missed_nodule, masks)[0] - segmentation_losses(found_both, masks)[0]
    )
    cost_effusion = (
        segmentation_losses(missed_effusion, masks)[0] - segmentation_losses(found_both, masks)[0]
    )
    assert cost_nodule == pytest.approx(cost_effusion.item(), rel=1e-4)
    assert cost_nodule > 0.9  # half its lesion term, over two images: about 4.0 / 2 / 2


def _disc(radius: float) -> np.ndarray:
    rows, cols = np.mgrid[:R, :R]
    return np.hypot(rows - 16, cols - 16) <= radius


def test_the_threshold_is_where_the_logits_trace_the_lesions_best():
    masks = np.stack([_disc(4), _disc(6), np.zeros((R, R), bool)])
    # Logits fall off with the distance from the centre and pass 3 just outside each
    # lesion's edge; the image without a lesion is all positive, and only the lesion
    # images count.
    distance = np.hypot(*(np.mgrid[:R, :R] - 16))
    logits = np.stack([7.05 - distance, 9.05 - distance, np.full((R, R), 5.0)])
    assert calibrate_threshold(logits, masks) == 3.0


def test_calibrating_without_any_lesion_is_an_error():
    with pytest.raises(ValueError, match="needs images with a lesion"):
        calibrate_threshold(np.zeros((2, R, R)), np.zeros((2, R, R), bool))


def test_a_trained_segmenter_keeps_its_threshold_and_segments_at_it(tmp_path):
    masks = np.stack([_disc(5), _disc(7), np.zeros((R, R), bool)])
    clean = np.where(masks, 0.8, 0.2)[:, None].astype(np.float16)
    data = SegmenterData(clean, masks, lambda rows, rng: clean[rows].astype(np.float32))
    config = SegmenterConfig(image_channels=1, widths=(8, 8))
    model, _ = train_segmenter(data, config, out_dir=tmp_path, steps=3, batch_size=2)
    images = torch.from_numpy(clean.astype(np.float32))
    with torch.no_grad():
        logits = model(images)
    assert float(model.threshold) in THRESHOLDS
    assert torch.equal(model.segment(images), logits > model.threshold)
    reloaded = Segmenter(config)
    reloaded.load_state_dict(model.state_dict())
    assert float(reloaded.threshold) == float(model.threshold)


def test_a_segmenter_saved_before_calibration_segments_at_zero():
    config = SegmenterConfig(image_channels=1, widths=(8, 8))
    saved = {k: v for k, v in Segmenter(config).state_dict().items() if k != "threshold"}
    model = Segmenter(config)
    model.threshold.fill_(2.5)
    model.load_state_dict(saved)
    assert float(model.threshold) == 0.0
