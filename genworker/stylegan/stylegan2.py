"""Gantry's StyleGAN2-ADA generator, built from a converted network description.

Any configuration NVIDIA's StyleGAN2-ADA (and StyleGAN3's StyleGAN2) code writes: every
resolution, mapping depth, conditional or not, "orig", "skip" or "resnet" synthesis.
Layers NVIDIA ran in fp16 run in fp32 here (their conv_clamp is applied all the same).
"""

from __future__ import annotations

import math

import torch

from genworker.stylegan.ops import (
    bias_act,
    conv2d_resample,
    normalize_2nd_moment,
    upsample2d,
)
from genworker.stylegan.spec import Described


class FullyConnectedLayer(Described):
    nvidia_class = "FullyConnectedLayer"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in] -> [N, out]
        weight = self.weight * float(self.attribute("weight_gain"))
        bias = getattr(self, "bias", None)
        if bias is not None:
            bias = bias * float(self.attribute("bias_gain"))
        activation = self.attribute("activation")
        if activation == "linear" and bias is not None:
            return torch.addmm(bias.unsqueeze(0), x, weight.t())
        return bias_act(x.matmul(weight.t()), bias, activation=activation)


class MappingNetwork(Described):
    """z [N, z_dim], c [N, c_dim] -> w broadcast to [N, num_ws, w_dim]."""

    nvidia_class = "MappingNetwork"

    def __init__(self, spec: dict) -> None:
        super().__init__(spec)
        self.z_dim = int(self.attribute("z_dim"))
        self.c_dim = int(self.attribute("c_dim"))
        self.w_dim = int(self.attribute("w_dim"))
        self.num_ws = int(self.attribute("num_ws"))
        self.embed = FullyConnectedLayer(self.child_spec("embed")) if self.c_dim else None
        self.layers = [f"fc{i}" for i in range(int(self.attribute("num_layers")))]
        for name in self.layers:
            self.add_module(name, FullyConnectedLayer(self.child_spec(name)))

    def forward(
        self,
        z: torch.Tensor,  # [N, z_dim]
        c: torch.Tensor,  # [N, c_dim] (N x 0 when unconditional)
        truncation_psi: float = 1.0,  # 1: none; 0: every w is the mean w
    ) -> torch.Tensor:  # [N, num_ws, w_dim]
        parts = []
        if self.z_dim:
            parts.append(normalize_2nd_moment(z.float()))
        if self.embed is not None:
            parts.append(normalize_2nd_moment(self.embed(c.float())))
        x = torch.cat(parts, dim=1)
        for name in self.layers:
            x = getattr(self, name)(x)
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


class SynthesisLayer(Described):
    """Modulated 3x3 convolution (upsampling first where ``up`` is 2), noise, bias, lrelu."""

    nvidia_class = "SynthesisLayer"

    def __init__(self, spec: dict) -> None:
        super().__init__(spec)
        self.affine = FullyConnectedLayer(self.child_spec("affine"))

    def forward(self, x: torch.Tensor, w: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)  # [N, in_channels]
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            demodulate=True,
            up=int(self.attribute("up")),
            padding=int(self.attribute("padding")),
            resample_filter=self.resample_filter,
        )
        if self.attribute("use_noise"):  # the stored noise: same image for the same w
            x = x + self.noise_const * self.noise_strength
        clamp = self.attribute("conv_clamp")
        return bias_act(
            x,
            self.bias,
            activation=self.attribute("activation"),
            gain=float(self.attribute("act_gain")) * gain,
            clamp=None if clamp is None else clamp * gain,
        )


class ToRGBLayer(Described):
    nvidia_class = "ToRGBLayer"

    def __init__(self, spec: dict) -> None:
        super().__init__(spec)
        self.affine = FullyConnectedLayer(self.child_spec("affine"))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * float(self.attribute("weight_gain"))
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, clamp=self.attribute("conv_clamp"))


class Conv2dLayer(Described):
    """The 1x1 upsampling convolution of a "resnet" block's skip path."""

    nvidia_class = "Conv2dLayer"

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        if int(self.attribute("down")) != 1:
            raise ValueError("a synthesis convolution never downsamples")
        weight = self.weight * float(self.attribute("weight_gain"))
        x = conv2d_resample(
            x,
            weight,
            self.resample_filter,
            up=int(self.attribute("up")),
            padding=int(self.attribute("padding")),
        )
        clamp = self.attribute("conv_clamp")
        return bias_act(
            x,
            getattr(self, "bias", None),
            activation=self.attribute("activation"),
            gain=float(self.attribute("act_gain")) * gain,
            clamp=None if clamp is None else clamp * gain,
        )


class SynthesisBlock(Described):
    """One resolution: (const or the previous features) -> conv0 -> conv1 (-> toRGB)."""

    nvidia_class = "SynthesisBlock"

    def __init__(self, spec: dict) -> None:
        super().__init__(spec)
        self.architecture = self.attribute("architecture")
        if self.architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unsupported synthesis architecture {self.architecture!r}")
        self.first = int(self.attribute("in_channels")) == 0
        self.num_conv = int(self.attribute("num_conv"))
        self.num_torgb = int(self.attribute("num_torgb"))
        if not self.first:
            self.conv0 = SynthesisLayer(self.child_spec("conv0"))
        self.conv1 = SynthesisLayer(self.child_spec("conv1"))
        self.torgb = ToRGBLayer(self.child_spec("torgb")) if self.num_torgb else None
        if self.architecture == "resnet" and not self.first:
            self.skip = Conv2dLayer(self.child_spec("skip"))

    def forward(
        self,
        x: torch.Tensor | None,  # [N, in_channels, R/2, R/2]; None for the first block
        img: torch.Tensor | None,  # [N, img_channels, R/2, R/2] so far (skip), or None
        ws: torch.Tensor,  # [N, num_conv + num_torgb, w_dim]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_iter = iter(ws.unbind(dim=1))
        if self.first:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, next(w_iter))
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter))
            x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x, next(w_iter))
            x = self.conv1(x, next(w_iter))
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.torgb is not None:
            y = self.torgb(x, next(w_iter))
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(Described):
    """ws [N, num_ws, w_dim] -> images [N, img_channels, R, R], about [-1, 1]."""

    nvidia_class = "SynthesisNetwork"

    def __init__(self, spec: dict) -> None:
        super().__init__(spec)
        self.num_ws = int(self.attribute("num_ws"))
        self.resolutions = [int(r) for r in self.attribute("block_resolutions")]
        for resolution in self.resolutions:
            self.add_module(f"b{resolution}", SynthesisBlock(self.child_spec(f"b{resolution}")))

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        x = img = None
        w_index = 0
        for resolution in self.resolutions:
            block = getattr(self, f"b{resolution}")
            x, img = block(x, img, ws.narrow(1, w_index, block.num_conv + block.num_torgb))
            w_index += block.num_conv
        return img


def modulated_conv2d(
    x: torch.Tensor,  # [N, I, H, W]
    weight: torch.Tensor,  # [O, I, k, k]
    styles: torch.Tensor,  # [N, I]
    *,
    demodulate: bool,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
) -> torch.Tensor:  # [N, O, H * up, W * up]
    """StyleGAN2's weight modulation, computed as input scaling, one shared convolution and
    output scaling (the same numbers as modulating each sample's weights)."""
    x = x * styles.reshape(x.shape[0], -1, 1, 1)
    x = conv2d_resample(x, weight, resample_filter, up=up, padding=padding)
    if demodulate:
        modulated = weight.unsqueeze(0) * styles.reshape(x.shape[0], 1, -1, 1, 1)
        coefficients = (modulated.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
        x = x * coefficients.reshape(x.shape[0], -1, 1, 1)
    return x
