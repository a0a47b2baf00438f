"""Convolutional building blocks shared by the autoencoder, the lesion renderer, the
segmenter and the anatomy reader: plain PyTorch, sized for two CPU cores."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels // 4), channels)


class ResBlock(nn.Module):
    """norm, SiLU, 3x3 conv, twice, beside an identity (or 1x1) skip."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            group_norm(channels_in),
            nn.SiLU(),
            nn.Conv2d(channels_in, channels_out, 3, padding=1),
            group_norm(channels_out),
            nn.SiLU(),
            nn.Conv2d(channels_out, channels_out, 3, padding=1),
        )
        self.skip = (
            nn.Identity()
            if channels_in == channels_out
            else nn.Conv2d(channels_in, channels_out, 1)
        )

    def forward(
        self,
        x: torch.Tensor,  # [n, channels_in, h, w]
    ) -> torch.Tensor:  # [n, channels_out, h, w]
        return self.skip(x) + self.body(x)


class Down(nn.Module):
    """Halve the resolution: a strided 3x3 convolution."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [n, c, h, w] -> [n, c', h/2, w/2]
        return self.conv(x)


class Up(nn.Module):
    """Double the resolution: nearest neighbour, then a 3x3 convolution."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [n, c, h, w] -> [n, c', 2h, 2w]
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """Images [n, C, R, R] in [0, 1] -> maps [n, outputs, R, R]: a U-Net working at half
    resolution (R divisible by 16), its output brought back to full size bilinearly."""

    def __init__(self, channels_in: int, outputs: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        w = widths
        self.stem = nn.Conv2d(channels_in, w[0], 3, padding=1)
        self.encoders = nn.ModuleList([ResBlock(w[0], w[0])])
        self.downs = nn.ModuleList()
        for i in range(1, len(w)):
            self.downs.append(Down(w[i - 1], w[i]))
            self.encoders.append(ResBlock(w[i], w[i]))
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in range(len(w) - 1, 0, -1):
            self.ups.append(Up(w[i], w[i - 1]))
            self.decoders.append(ResBlock(2 * w[i - 1], w[i - 1]))
        self.head = nn.Conv2d(w[0], outputs, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = images.shape[-1]
        x = F.interpolate(images, scale_factor=0.5, mode="area") * 2 - 1
        x = self.encoders[0](self.stem(x))
        skips = [x]
        for down, encode in zip(self.downs, self.encoders[1:], strict=True):
            x = encode(down(x))
            skips.append(x)
        for up, decode, skip in zip(self.ups, self.decoders, skips[-2::-1], strict=True):
            x = decode(torch.cat([up(x), skip], dim=1))
        return F.interpolate(self.head(x), size=(size, size), mode="bilinear")


def assert_shape(tensor: torch.Tensor, shape: list[int | None]) -> None:
    """Fail with both shapes if ``tensor`` does not match (None matches any size)."""
    ok = tensor.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(tensor.shape, shape, strict=True)
    )
    if not ok:
        raise ValueError(f"expected a tensor of shape {shape}, got {list(tensor.shape)}")
