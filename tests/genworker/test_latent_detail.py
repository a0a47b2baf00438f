"""The detail network: the full latent grid from the coarse grid the anatomy GAN draws."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genworker.latent.detail import DetailConfig, held_out_l1, train_detail

TINY = DetailConfig(latent_channels=2, factor=4, width=16, blocks=1)


def _latents(n: int, seed: int) -> np.ndarray:
    """A smooth field with a sharp step where it crosses zero: the coarse grid says where
    the step is, and bilinear upsampling blurs it."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.normal(size=(n, 2, 4, 4)).astype(np.float32))
    smooth = F.interpolate(coarse, scale_factor=4, mode="bilinear")
    return (smooth + 0.8 * torch.sign(smooth)).numpy()


def test_the_coarse_grid_is_standardised_and_a_constant_latent_comes_back_unchanged(tmp_path):
    latents = _latents(64, seed=0)
    model, _ = train_detail(latents, TINY, out_dir=tmp_path, steps=0)
    coarse = model.coarse(torch.from_numpy(latents))
    assert coarse.shape == (64, 2, 4, 4)
    np.testing.assert_allclose(coarse.mean(dim=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(coarse.std(dim=(0, 2, 3)), 1.0, atol=1e-4)
    flat = torch.full((1, 2, 16, 16), 0.7)  # pooling and upsampling change nothing
    torch.testing.assert_close(model.upsampled(model.coarse(flat)), flat)


def test_the_detail_network_learns_what_pooling_removed(tmp_path):
    torch.set_num_threads(1)
    model, progress = train_detail(
        _latents(256, seed=1), TINY, out_dir=tmp_path, steps=150, batch_size=16, lr=3e-3
    )
    assert progress.step == 150
    detailed, bilinear = held_out_l1(model, _latents(32, seed=2))
    assert detailed < 0.6 * bilinear


def test_a_detail_run_resumes_where_it_stopped(tmp_path):
    torch.set_num_threads(1)
    latents = _latents(64, seed=3)
    options = {"steps": 6, "batch_size": 4}
    whole, _ = train_detail(latents, TINY, out_dir=tmp_path / "whole", **options)
    train_detail(latents, TINY, out_dir=tmp_path / "cut", max_steps=3, **options)
    resumed, progress = train_detail(latents, TINY, out_dir=tmp_path / "cut", **options)
    assert progress.step == 6
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_a_floor_decays_the_learning_rate_to_that_share_and_none_keeps_it(tmp_path):
    latents = _latents(16, seed=4)
    options = {"steps": 8, "batch_size": 4, "lr": 1e-3}
    train_detail(latents, TINY, out_dir=tmp_path / "decayed", lr_floor=0.1, **options)
    train_detail(latents, TINY, out_dir=tmp_path / "constant", **options)

    def last_lrs(folder: str) -> list[float]:
        state = torch.load(tmp_path / folder / "detail-state.pt", weights_only=True)
        return [state["modules"][o]["param_groups"][0]["lr"] for o in ("opt", "opt_D")]

    last = 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 7 / 8))  # the schedule at the eighth step
    np.testing.assert_allclose(last_lrs("decayed"), [1e-3 * last] * 2)
    np.testing.assert_allclose(last_lrs("constant"), [1e-3] * 2)
