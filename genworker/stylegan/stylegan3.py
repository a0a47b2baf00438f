"""Gantry's StyleGAN3 generator (configs T and R), built from a converted network
description.

Every layer's sizes, sampling rates, paddings and low-pass filters come from the
description (NVIDIA's code stores the designed filters as buffers), so any resolution,
depth and width loads. Layers NVIDIA ran in fp16 run in fp32 here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from genworker.stylegan.ops import bias_act, upfirdn2d
from genworker.stylegan.spec import Described
from genworker.stylegan.stylegan2 import FullyConnectedLayer

# StyleGAN3's mapping computes what StyleGAN2-ADA's does and stores the same attributes.
from genworker.stylegan.stylegan2 import MappingNetwork as MappingNetwork


class SynthesisInput(Described):
    """Fourier features of w's rotation and translation, [N, channels, size, size]."""

    nvidia_class = "SynthesisInput"

    def __init__(self, spec: dict) -> None:
        super().__init__(spec)
        self.affine = FullyConnectedLayer(self.child_spec("affine"))
        self.size = [int(s) for s in np.broadcast_to(self.attribute("size"), [2])]
        self.sampling_rate = float(self.attribute("sampling_rate"))
        self.bandwidth = float(self.attribute("bandwidth"))
        self.channels = int(self.attribute("channels"))

    def forward(self, w: torch.Tensor) -> torch.Tensor:  # [N, w_dim]
        n = w.shape[0]
        t = self.affine(w)  # rotation (cos, sin) and translation (x, y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        rotation = torch.eye(3, device=w.device).repeat(n, 1, 1)
        rotation[:, 0, 0] = t[:, 0]
        rotation[:, 0, 1] = -t[:, 1]
        rotation[:, 1, 0] = t[:, 1]
        rotation[:, 1, 1] = t[:, 0]
        translation = torch.eye(3, device=w.device).repeat(n, 1, 1)
        translation[:, 0, 2] = -t[:, 2]
        translation[:, 1, 2] = -t[:, 3]
        transforms = rotation @ translation @ self.transform.unsqueeze(0)
        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]  # [N, C, 2]
        # Out-of-band frequencies (possible after a user transform) fade out.
        amplitudes = (
            1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)
        ).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grid = F.affine_grid(
            theta.unsqueeze(0), [1, 1, self.size[1], self.size[0]], align_corners=False
        )  # [1, H, W, 2]
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (2 * math.pi))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)  # [N, H, W, C]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(Described):
    """Modulated convolution, then bias and a leaky ReLU between an upsampling and a
    downsampling low-pass filter (the last layer: a 1x1 toRGB, linear)."""

    nvidia_class = "SynthesisLayer"

    def __init__(self, spec: dict) -> None:
        super().__init__(spec)
        self.affine = FullyConnectedLayer(self.child_spec("affine"))
        self.is_torgb = bool(self.attribute("is_torgb"))
        self.conv_kernel = int(self.attribute("conv_kernel"))
        self.in_channels = int(self.attribute("in_channels"))
        self.up = int(self.attribute("up_factor"))
        self.down = int(self.attribute("down_factor"))
        self.padding = [int(p) for p in self.attribute("padding")]
        self.conv_clamp = self.attribute("conv_clamp")
        # A layer without resampling stores no filter (NVIDIA's code keeps None there).
        for name in ("up_filter", "down_filter"):
            if name not in self._buffers:
                self.register_buffer(name, None)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / math.sqrt(self.in_channels * self.conv_kernel**2)
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            demodulate=not self.is_torgb,
            padding=self.conv_kernel - 1,
            input_gain=self.magnitude_ema.rsqrt(),
        )
        return filtered_lrelu(
            x,
            self.up_filter,
            self.down_filter,
            self.bias,
            up=self.up,
            down=self.down,
            padding=self.padding,
            gain=1.0 if self.is_torgb else math.sqrt(2),
            slope=1.0 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )


class SynthesisNetwork(Described):
    """ws [N, num_ws, w_dim] -> images [N, img_channels, R, R], about [-1, 1]."""

    nvidia_class = "SynthesisNetwork"

    def __init__(self, spec: dict) -> None:
        super().__init__(spec)
        self.num_ws = int(self.attribute("num_ws"))
        self.output_scale = float(self.attribute("output_scale"))
        self.input = SynthesisInput(self.child_spec("input"))
        self.layer_names = list(self.attribute("layer_names"))
        for name in self.layer_names:
            self.add_module(name, SynthesisLayer(self.child_spec(name)))

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        ws = ws.float().unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:], strict=False):
            x = getattr(self, name)(x, w)
        return x * self.output_scale


def modulated_conv2d(
    x: torch.Tensor,  # [N, I, H, W]
    weight: torch.Tensor,  # [O, I, k, k]
    styles: torch.Tensor,  # [N, I]
    *,
    demodulate: bool,
    padding: int,
    input_gain: torch.Tensor,  # [] or [I]: the inverse of the input's typical magnitude
) -> torch.Tensor:
    """StyleGAN3's modulation: weights and styles pre-normalised, then per-sample
    modulated (and demodulated) weights in one grouped convolution."""
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if demodulate:
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_channels, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, out_channels, 1, 1, 1)
    w = w * input_gain.expand(n, in_channels).reshape(n, 1, in_channels, 1, 1)
    x = F.conv2d(
        x.reshape(1, n * in_channels, *x.shape[2:]),
        w.reshape(n * out_channels, in_channels, kh, kw),
        padding=padding,
        groups=n,
    )
    return x.reshape(n, out_channels, *x.shape[2:])


def filtered_lrelu(
    x: torch.Tensor,  # [N, C, H, W]
    up_filter: torch.Tensor | None,
    down_filter: torch.Tensor | None,
    bias: torch.Tensor,  # [C]
    *,
    up: int,
    down: int,
    padding: list[int],  # x0, x1, y0, y1 of the upsampling
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    """Bias; upsample by ``up`` with ``up_filter``; leaky ReLU, gain, clamp; downsample by
    ``down`` with ``down_filter``."""
    x = bias_act(x, bias)
    x = upfirdn2d(x, up_filter, up=up, padding=padding, gain=up * up)
    x = bias_act(x, activation="lrelu", slope=slope, gain=gain, clamp=clamp)
    return upfirdn2d(x, down_filter, down=down)
