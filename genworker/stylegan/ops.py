"""The resampling and activation arithmetic of StyleGAN2-ADA and StyleGAN3, in plain PyTorch.

Written for Gantry from the papers' definitions (Karras et al. 2020, "Training generative
adversarial networks with limited data"; 2021, "Alias-free generative adversarial
networks") so that imported weights give the images their authors' code gives: FIR
up/downsampling (zero insertion, padding, filtering, decimation), bias + activation +
gain + clamp, and weight (de)modulation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def bias_act(
    x: torch.Tensor,  # [N, C, ...] or [N, C]
    bias: torch.Tensor | None = None,  # [C]
    *,
    activation: str = "linear",  # "linear" | "lrelu"
    slope: float = LRELU_SLOPE,
    gain: float | None = None,  # None: the activation's own (sqrt 2 for lrelu, 1 for linear)
    clamp: float | None = None,  # clamp the result to [-clamp, clamp]
) -> torch.Tensor:
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2))
    if activation == "lrelu":
        x = F.leaky_relu(x, slope)
    elif activation != "linear":
        raise ValueError(f"unsupported activation {activation!r}")
    if gain is None:
        gain = LRELU_GAIN if activation == "lrelu" else 1.0
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def upfirdn2d(
    x: torch.Tensor,  # [N, C, H, W]
    f: torch.Tensor | None,  # [taps] (separable) or [fh, fw]; None: identity
    *,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] | list[int] = (0, 0, 0, 0),  # x0, x1, y0, y1
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative pads crop), convolve with ``f`` (a true
    convolution: the filter is flipped), then keep every ``down``-th sample."""
    if f is None:
        f = torch.ones([1, 1], device=x.device)
    f = (f * gain ** (f.ndim / 2)).to(x.dtype)
    px0, px1, py0, py1 = (int(p) for p in padding)
    if up > 1:
        if down > 1:
            raise ValueError("upsample and downsample in two calls")
        return _upsample_filtered(x, f, up, (px0, px1, py0, py1))
    c = x.shape[1]
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[
        :,
        :,
        max(-py0, 0) : x.shape[2] - max(-py1, 0),
        max(-px0, 0) : x.shape[3] - max(-px1, 0),
    ]
    f = f.flip(list(range(f.ndim)))
    # Decimation as the convolutions' stride: only the kept samples are computed.
    if f.ndim == 2:
        return F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), stride=down, groups=c)
    x = F.conv2d(x, f[None, None, None].repeat(c, 1, 1, 1), stride=(1, down), groups=c)
    return F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), stride=(down, 1), groups=c)


def _upsample_filtered(
    x: torch.Tensor, f: torch.Tensor, up: int, padding: tuple[int, int, int, int]
) -> torch.Tensor:
    """upfirdn2d's upsampling as a strided transposed convolution (its full convolution of
    the zero-inserted input, without multiplying the inserted zeros), cut to the window
    ``padding`` asks for."""
    _, c, h, w = x.shape
    if f.ndim == 1:
        kernels = [(f[None, None, None], (1, up)), (f[None, None, :, None], (up, 1))]
    else:
        kernels = [(f[None, None], (up, up))]
    for kernel, stride in kernels:
        x = F.conv_transpose2d(x, kernel.repeat(c, 1, 1, 1), stride=stride, groups=c)
    taps_h, taps_w = f.shape[0], f.shape[-1]
    px0, px1, py0, py1 = padding
    left, top = px0 - (taps_w - 1), py0 - (taps_h - 1)
    out_w = w * up + px0 + px1 - taps_w + 1
    out_h = h * up + py0 + py1 - taps_h + 1
    return F.pad(x, [left, out_w - x.shape[3] - left, top, out_h - x.shape[2] - top])


def filter_size(f: torch.Tensor | None) -> int:
    return 1 if f is None else int(f.shape[-1])


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """Upsample by ``up`` with the FIR filter ``f``, the output exactly ``up`` times larger."""
    taps = filter_size(f)
    pad = [(taps + up - 1) // 2, (taps - up) // 2]
    return upfirdn2d(x, f, up=up, padding=pad + pad, gain=up * up)


def conv2d_resample(
    x: torch.Tensor,  # [N, I, H, W]
    weight: torch.Tensor,  # [O, I, k, k]
    f: torch.Tensor | None = None,  # the FIR filter of the upsampling
    *,
    up: int = 1,
    padding: int = 0,
) -> torch.Tensor:
    """A convolution, after upsampling by ``up`` with ``f`` when ``up`` > 1.

    Without upsampling it is a cross-correlation (as ``conv2d``); with it, the upsampled
    convolution is a true convolution (the kernel flipped), as a transposed convolution is.
    """
    if up == 1:
        return F.conv2d(x, weight, padding=padding)
    taps = filter_size(f)
    kernel = weight.shape[-1]
    if kernel == 1:  # convolve first, then upsample: the same result, cheaper
        x = F.conv2d(x, weight)
        pad = [padding + (taps + up - 1) // 2, padding + (taps - up) // 2]
        return upfirdn2d(x, f, up=up, padding=pad + pad, gain=up * up)
    pad = [padding + (taps + up - 1) // 2, padding + (taps - up) // 2]
    x = upfirdn2d(x, f, up=up, padding=pad + pad, gain=up * up)
    return F.conv2d(x, weight.flip([2, 3]))


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()
