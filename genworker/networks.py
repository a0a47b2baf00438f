"""Conditional generators and discriminators: StyleGAN2-style and a DCGAN-style cGAN.

Both generators share one interface (see :class:`ConditionalGenerator`):
``mapping(z, cond) -> w``, ``synthesis(w) -> image``, ``sample(cond, seed)``. The
condition vector is laid out by :class:`~genworker.conditions.ConditionSchema`.

Written for this project after the structure of NVIDIA's StyleGAN2 (equalised learning
rate, mapping network, weight (de)modulation, noise inputs, skip toRGB outputs, residual
discriminator with minibatch standard deviation). Resampling is bilinear upsampling and
2x2 average pooling rather than NVIDIA's custom FIR kernels, so everything runs on
stock PyTorch, on CPU and CUDA alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genworker.conditions import ConditionSchema

LRELU_GAIN = math.sqrt(2.0)  # keeps activations at unit variance after leaky ReLU(0.2)
NOISE_MODES = ("const", "random", "none")
# Truncation pulls w toward the mean w *of the requested condition*: the mean of
# mapping(z_i, cond) over TRUNCATION_SAMPLES fixed latents drawn from TRUNCATION_SEED.
# Computed on the fly (a few hundred passes through a small MLP), so it needs no state
# and is identical on every device.
TRUNCATION_SEED = 2**31 - 1
TRUNCATION_SAMPLES = 256


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild a generator (and its discriminator) from scratch.

    Defaults are the "same-config" model of the speed benchmark: z 512, mapping 2
    layers, channel_base 16384, channel_max 512, one image channel.
    """

    architecture: str = "stylegan2"  # "stylegan2" | "cgan"
    resolution: int = 128
    findings: tuple[str, ...] = ("normal",)
    z_dim: int = 512
    w_dim: int = 512
    img_channels: int = 1  # 1 = image, 2 = image + lesion mask; a latent grid's channels
    channel_base: int = 16384  # feature maps at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01

    def __post_init__(self) -> None:
        object.__setattr__(self, "findings", tuple(self.findings))
        if self.architecture not in GENERATORS:
            raise ValueError(f"architecture must be one of {sorted(GENERATORS)}")
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise ValueError("resolution must be a power of two, at least 8")
        if self.img_channels < 1:
            raise ValueError("img_channels must be at least 1")
        if not self.findings:
            raise ValueError("a generator needs at least one finding")

    @property
    def schema(self) -> ConditionSchema:
        return ConditionSchema(self.findings)

    def channels_at(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

    def to_dict(self) -> dict:
        return {**asdict(self), "findings": list(self.findings)}

    @classmethod
    def from_dict(cls, data: dict) -> GeneratorConfig:
        return cls(**{**data, "findings": tuple(data["findings"])})


def z_from_seed(seed: int, n: int, z_dim: int) -> np.ndarray:
    """Latents float32 [n, z_dim] from numpy's PCG64, so a seed means the same z everywhere."""
    return np.random.default_rng(seed).standard_normal((n, z_dim)).astype(np.float32)


def assert_shape(tensor: torch.Tensor, shape: Sequence[int | None]) -> None:
    """Fail loudly when ``tensor`` is not ``shape`` (None matches any size)."""
    ok = tensor.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(tensor.shape, shape, strict=True)
    )
    assert ok, f"expected shape {list(shape)}, got {list(tensor.shape)}"


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of x [n, c] to unit mean square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """[n, c, h, w] -> [n, c, 2h, 2w], bilinear."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------------------
# Layers with equalised learning rate: parameters are stored at unit scale and multiplied
# by their He constant at run time, so Adam's step size means the same for every layer.


class FullyConnected(nn.Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        activation: str = "linear",  # "linear" | "lrelu"
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)) / lr_multiplier)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(
        self,
        x: torch.Tensor,  # [n, in_features]
    ) -> torch.Tensor:  # [n, out_features]
        assert_shape(x, [None, self.in_features])
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        if self.activation == "lrelu":
            x = F.leaky_relu(x, 0.2) * LRELU_GAIN
        return x


class Conv2dLayer(nn.Module):
    """Plain convolution (discriminators, cGAN), optional 2x resampling around it."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        activation: str = "lrelu",  # "linear" | "lrelu"
        bias: bool = True,
        up: bool = False,  # bilinear 2x upsampling before the convolution
        down: bool = False,  # 2x2 average pooling before the convolution
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)

    def forward(
        self,
        x: torch.Tensor,  # [n, in_channels, h, w]
    ) -> torch.Tensor:  # [n, out_channels, h', w'] with h' = 2h (up), h/2 (down) or h
        assert_shape(x, [None, self.in_channels, None, None])
        if self.up:
            x = upsample2x(x)
        if self.down:
            x = F.avg_pool2d(x, 2)
        padding = self.weight.shape[-1] // 2
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=padding)
        if self.activation == "lrelu":
            x = F.leaky_relu(x, 0.2) * LRELU_GAIN
        return x


def modulated_conv2d(
    x: torch.Tensor,  # [n, in_channels, h, w]
    weight: torch.Tensor,  # [out_channels, in_channels, k, k]
    styles: torch.Tensor,  # [n, in_channels]
    *,
    demodulate: bool,
) -> torch.Tensor:  # [n, out_channels, h, w]
    """StyleGAN2's modulated convolution, in its activation-scaling form.

    Scaling the weight per sample (``w'[o,i] = w[o,i] * s[i]``), then demodulating it
    (``w''[o,i] = w'[o,i] / ||w'[o,:]||``) and convolving equals scaling the input's
    channels by ``s``, convolving with the shared weight and scaling the output channels
    by the demodulation coefficients. This form is one ordinary convolution for the whole
    batch; it measured faster than the grouped per-sample form on CPU.
    """
    n, in_channels = x.shape[:2]
    assert_shape(weight, [None, in_channels, None, None])
    assert_shape(styles, [n, in_channels])
    padding = weight.shape[-1] // 2
    y = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=padding)
    if demodulate:
        # ||w'[o,:]||^2 = sum_i s[i]^2 * sum_kk w[o,i,k,k]^2, for every sample at once.
        coefs = (styles.square() @ weight.square().sum(dim=[2, 3]).T + 1e-8).rsqrt()  # [n, out]
        y = y * coefs[:, :, None, None].to(y.dtype)
    return y


# --------------------------------------------------------------------------------------
# Mapping network (shared by both generators)


class MappingNetwork(nn.Module):
    """(z, condition) -> w: normalised z and embedded condition, then an MLP."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.z_dim = config.z_dim
        self.cond_dim = config.schema.dim
        self.embed = FullyConnected(self.cond_dim, config.w_dim)
        features = [config.z_dim + config.w_dim] + [config.w_dim] * config.mapping_layers
        self.layers = nn.Sequential(
            *(
                FullyConnected(
                    features[i],
                    features[i + 1],
                    activation="lrelu",
                    lr_multiplier=config.mapping_lr_multiplier,
                )
                for i in range(config.mapping_layers)
            )
        )
        # Running mean of w over training (updated by the training loop). Truncation uses
        # the per-condition mean instead; w_avg is kept as the unconditional centre that
        # NVIDIA's checkpoints carry, for comparison and diagnostics.
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(
        self,
        z: torch.Tensor,  # [n, z_dim]
        cond: torch.Tensor,  # [n, cond_dim]
    ) -> torch.Tensor:  # [n, w_dim]
        assert_shape(z, [None, self.z_dim])
        assert_shape(cond, [z.shape[0], self.cond_dim])
        x = torch.cat([normalize_2nd_moment(z), normalize_2nd_moment(self.embed(cond))], dim=1)
        return self.layers(x)


# --------------------------------------------------------------------------------------
# The common generator interface


class ConditionalGenerator(nn.Module):
    """What every Gantry generator offers; subclasses build the two networks.

    ``forward`` is the training path (unclamped, random noise); ``synthesis`` and
    ``sample`` are the inference path (clamped to [-1, 1], fixed noise by default).
    """

    mapping_network: MappingNetwork
    synthesis_network: nn.Module
    num_ws: int

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.schema = config.schema
        self.z_dim = config.z_dim
        self.w_dim = config.w_dim
        self.mapping_network = MappingNetwork(config)

    @property
    def device(self) -> torch.device:
        return self.mapping_network.w_avg.device

    def forward(
        self,
        z: torch.Tensor,  # [n, z_dim]
        cond: torch.Tensor,  # [n, cond_dim]
        noise_mode: str = "random",
    ) -> torch.Tensor:  # [n, img_channels, R, R], unclamped
        return self.synthesis_network(self.mapping(z, cond), noise_mode)

    def mapping(
        self,
        z: torch.Tensor,  # [n, z_dim]
        cond: torch.Tensor,  # [n, cond_dim]
        truncation: float = 1.0,  # 1 = none, 0 = the per-condition mean w
    ) -> torch.Tensor:  # [n, num_ws, w_dim]
        w = self.mapping_network(z, cond)
        if truncation != 1.0:
            w = torch.lerp(self.condition_mean_w(cond), w, truncation)
        return w[:, None, :].repeat(1, self.num_ws, 1)

    @torch.no_grad()
    def condition_mean_w(
        self,
        cond: torch.Tensor,  # [n, cond_dim]
    ) -> torch.Tensor:  # [n, w_dim], mean w of each row's condition
        z = torch.from_numpy(z_from_seed(TRUNCATION_SEED, TRUNCATION_SAMPLES, self.z_dim))
        z = z.to(cond.device)
        unique, inverse = torch.unique(cond, dim=0, return_inverse=True)  # [m, c], [n]
        m = len(unique)
        w = self.mapping_network(
            z.repeat(m, 1), unique.repeat_interleave(TRUNCATION_SAMPLES, dim=0)
        )  # [m * K, w_dim]
        return w.reshape(m, TRUNCATION_SAMPLES, self.w_dim).mean(dim=1)[inverse]

    def synthesis(
        self,
        w: torch.Tensor,  # [n, num_ws, w_dim]
        noise_mode: str = "const",
    ) -> torch.Tensor:  # [n, img_channels, R, R] in [-1, 1]
        return self.synthesis_network(w, noise_mode).clamp(-1.0, 1.0)

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor | np.ndarray,  # [n, cond_dim]
        seed: int,
        truncation: float = 1.0,
        noise_mode: str = "const",
    ) -> torch.Tensor:  # [n, img_channels, R, R] in [-1, 1]
        """Images for z = z_from_seed(seed, n, z_dim); deterministic for a seed on a device."""
        cond = torch.as_tensor(cond, dtype=torch.float32, device=self.device)
        z = torch.from_numpy(z_from_seed(seed, len(cond), self.z_dim)).to(self.device)
        return self.synthesis(self.mapping(z, cond, truncation), noise_mode)


# --------------------------------------------------------------------------------------
# StyleGAN2 synthesis


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution, noise input, bias and leaky ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: bool
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.up = up
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(
        self,
        x: torch.Tensor,  # [n, in_channels, r, r], r = resolution (/ 2 when up)
        w: torch.Tensor,  # [n, w_dim]
        noise_mode: str,
    ) -> torch.Tensor:  # [n, out_channels, resolution, resolution]
        size = self.resolution // 2 if self.up else self.resolution
        assert_shape(x, [None, self.in_channels, size, size])
        if self.up:
            x = upsample2x(x)
        x = modulated_conv2d(x, self.weight, self.affine(w), demodulate=True)
        if noise_mode == "random":
            noise = torch.randn(len(x), 1, self.resolution, self.resolution, device=x.device)
            x = x + noise.to(x.dtype) * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        x = x + self.bias[None, :, None, None].to(x.dtype)
        return F.leaky_relu(x, 0.2) * LRELU_GAIN


class ToImage(nn.Module):
    """Modulated 1x1 convolution to image channels (no demodulation), StyleGAN's toRGB."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(
        self,
        x: torch.Tensor,  # [n, in_channels, r, r]
        w: torch.Tensor,  # [n, w_dim]
    ) -> torch.Tensor:  # [n, img_channels, r, r]
        styles = self.affine(w) * self.weight_gain
        y = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return y + self.bias[None, :, None, None].to(y.dtype)


class SynthesisBlock(nn.Module):
    """One resolution: (upsample +) two modulated convs, plus a skip image output."""

    def __init__(
        self, in_channels: int, out_channels: int, config: GeneratorConfig, resolution: int
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.out_channels = out_channels
        if resolution == 4:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
            self.convs = nn.ModuleList(
                [SynthesisLayer(out_channels, out_channels, config.w_dim, 4, up=False)]
            )
        else:
            self.convs = nn.ModuleList(
                [
                    SynthesisLayer(in_channels, out_channels, config.w_dim, resolution, up=True),
                    SynthesisLayer(out_channels, out_channels, config.w_dim, resolution, up=False),
                ]
            )
        self.to_image = ToImage(out_channels, config.img_channels, config.w_dim)
        self.num_ws = len(self.convs) + 1  # convs, then toRGB (shares w with the next block)

    def forward(
        self,
        x: torch.Tensor | None,  # [n, in_channels, r/2, r/2]; None in the 4x4 block
        img: torch.Tensor | None,  # [n, img_channels, r/2, r/2]; None in the 4x4 block
        ws: torch.Tensor,  # [n, num_ws, w_dim]
        noise_mode: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # features [n, out, r, r], image [n, C, r, r]
        if x is None:
            x = self.const[None].expand(len(ws), -1, -1, -1)
        for i, conv in enumerate(self.convs):
            x = conv(x, ws[:, i], noise_mode)
        y = self.to_image(x, ws[:, len(self.convs)])
        img = y if img is None else upsample2x(img) + y
        return x, img


class StyleGAN2Synthesis(nn.Module):
    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim = config.w_dim
        self.out_shape = [config.img_channels, config.resolution, config.resolution]
        resolutions = [2**i for i in range(2, int(math.log2(config.resolution)) + 1)]
        self.blocks = nn.ModuleList()
        in_channels = 0
        for res in resolutions:
            out_channels = config.channels_at(res)
            self.blocks.append(SynthesisBlock(in_channels, out_channels, config, res))
            in_channels = out_channels
        # Consecutive blocks overlap by one w: a block's toRGB uses the next block's first w.
        self.num_ws = sum(len(block.convs) for block in self.blocks) + 1

    def forward(
        self,
        ws: torch.Tensor,  # [n, num_ws, w_dim]
        noise_mode: str,  # "const" | "random" | "none"
    ) -> torch.Tensor:  # [n, img_channels, R, R], unclamped
        assert_shape(ws, [None, self.num_ws, self.w_dim])
        assert noise_mode in NOISE_MODES, f"noise_mode must be one of {NOISE_MODES}"
        x = img = None
        w_index = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, w_index : w_index + block.num_ws], noise_mode)
            w_index += len(block.convs)
        assert_shape(img, [len(ws), *self.out_shape])
        return img


class StyleGAN2Generator(ConditionalGenerator):
    """Conditional StyleGAN2: one w per modulated layer (all equal unless edited)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config)
        self.synthesis_network = StyleGAN2Synthesis(config)
        self.num_ws = self.synthesis_network.num_ws


# --------------------------------------------------------------------------------------
# cGAN synthesis (DCGAN-style)


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """Normalise each pixel's feature vector of x [n, c, h, w] to unit mean square."""
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


class CGANSynthesis(nn.Module):
    """w -> 4x4 features -> (upsample, conv, conv) per octave -> image.

    Pixel normalisation stands in for DCGAN's batch norm so an image never depends on the
    rest of its batch. No noise inputs: ``noise_mode`` is accepted for the common API only.
    """

    num_ws = 1

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim = config.w_dim
        self.out_shape = [config.img_channels, config.resolution, config.resolution]
        self.base_channels = config.channels_at(4)
        self.project = FullyConnected(config.w_dim, self.base_channels * 16, activation="lrelu")
        layers: list[nn.Module] = []
        channels = self.base_channels
        for res in [2**i for i in range(3, int(math.log2(config.resolution)) + 1)]:
            out_channels = config.channels_at(res)
            layers.append(Conv2dLayer(channels, out_channels, 3, up=True))
            layers.append(Conv2dLayer(out_channels, out_channels, 3))
            channels = out_channels
        self.convs = nn.ModuleList(layers)
        self.to_image = Conv2dLayer(channels, config.img_channels, 1, activation="linear")

    def forward(
        self,
        ws: torch.Tensor,  # [n, 1, w_dim]
        noise_mode: str,  # ignored: this network has no noise inputs
    ) -> torch.Tensor:  # [n, img_channels, R, R], unclamped
        assert_shape(ws, [None, 1, self.w_dim])
        assert noise_mode in NOISE_MODES, f"noise_mode must be one of {NOISE_MODES}"
        x = self.project(ws[:, 0]).reshape(len(ws), self.base_channels, 4, 4)
        x = pixel_norm(x)
        for conv in self.convs:
            x = pixel_norm(conv(x))
        img = self.to_image(x)
        assert_shape(img, [len(ws), *self.out_shape])
        return img


class CGANGenerator(ConditionalGenerator):
    """Conditional DCGAN-style generator; the condition enters through the mapping."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config)
        self.synthesis_network = CGANSynthesis(config)
        self.num_ws = 1


# --------------------------------------------------------------------------------------
# Discriminators


class ProjectionHead(nn.Module):
    """Logit = psi(h) + <embed(cond), h> / sqrt(c) (Miyato & Koyama's projection)."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.channels = channels
        self.unconditional = FullyConnected(channels, 1)
        self.embed = nn.Sequential(
            FullyConnected(cond_dim, channels, activation="lrelu"),
            FullyConnected(channels, channels),
        )

    def forward(
        self,
        h: torch.Tensor,  # [n, channels]
        cond: torch.Tensor,  # [n, cond_dim]
    ) -> torch.Tensor:  # [n]
        projection = (h * self.embed(cond)).sum(dim=1) / math.sqrt(self.channels)
        return self.unconditional(h)[:, 0] + projection


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (the second downsamples) beside a 1x1 skip."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3)
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, down=True)
        self.skip = Conv2dLayer(
            in_channels, out_channels, 1, activation="linear", bias=False, down=True
        )

    def forward(
        self,
        x: torch.Tensor,  # [n, in_channels, r, r]
    ) -> torch.Tensor:  # [n, out_channels, r/2, r/2]
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)


def minibatch_stddev(
    x: torch.Tensor,  # [n, c, h, w]
) -> torch.Tensor:  # [n, c + 1, h, w]
    """Append the feature std within groups of up to 4 samples as one extra channel."""
    n, c, h, w = x.shape
    group = math.gcd(4, n)
    y = x.float().reshape(group, n // group, c, h, w)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=[1, 2, 3])  # [n / group]
    y = y.reshape(1, n // group, 1, 1, 1).expand(group, -1, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 features -> minibatch std, conv, fc -> projection logit; both discriminators end so.

    The minibatch-std channel (Karras et al., 2018) lets the discriminator see how alike
    the images of a batch are. The cGAN's discriminator used to lack it and judged each
    image alone; the CPU cGANs trained so drew one subject per condition whatever z was
    (see also ``genworker.training._mode_seeking_loss``).
    """

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv = Conv2dLayer(channels + 1, channels, 3)
        self.fc = FullyConnected(channels * 16, channels, activation="lrelu")
        self.head = ProjectionHead(channels, cond_dim)

    def forward(
        self,
        x: torch.Tensor,  # [n, channels, 4, 4]
        cond: torch.Tensor,  # [n, cond_dim]
    ) -> torch.Tensor:  # [n] logits, high = real
        assert_shape(x, [None, self.channels, 4, 4])
        x = self.conv(minibatch_stddev(x))
        return self.head(self.fc(x.flatten(1)), cond)


class StyleGAN2Discriminator(nn.Module):
    """Residual discriminator; ends in :class:`DiscriminatorEpilogue`."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.in_shape = [config.img_channels, config.resolution, config.resolution]
        self.cond_dim = config.schema.dim
        resolutions = [2**i for i in range(int(math.log2(config.resolution)), 2, -1)]  # R..8
        self.from_image = Conv2dLayer(config.img_channels, config.channels_at(config.resolution), 1)
        self.blocks = nn.Sequential(
            *(
                DiscriminatorBlock(config.channels_at(r), config.channels_at(r // 2))
                for r in resolutions
            )
        )
        self.epilogue = DiscriminatorEpilogue(config.channels_at(4), self.cond_dim)

    def forward(
        self,
        img: torch.Tensor,  # [n, img_channels, R, R]
        cond: torch.Tensor,  # [n, cond_dim]
    ) -> torch.Tensor:  # [n] logits, high = real
        assert_shape(img, [None, *self.in_shape])
        assert_shape(cond, [len(img), self.cond_dim])
        return self.epilogue(self.blocks(self.from_image(img)), cond)


class ProjectionDiscriminator(nn.Module):
    """DCGAN-style strided discriminator for the cGAN; ends in :class:`DiscriminatorEpilogue`."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.in_shape = [config.img_channels, config.resolution, config.resolution]
        self.cond_dim = config.schema.dim
        layers: list[nn.Module] = [
            Conv2dLayer(config.img_channels, config.channels_at(config.resolution), 3)
        ]
        for r in [2**i for i in range(int(math.log2(config.resolution)), 2, -1)]:  # R..8
            layers.append(
                Conv2dLayer(config.channels_at(r), config.channels_at(r // 2), 3, down=True)
            )
        self.convs = nn.Sequential(*layers)
        self.epilogue = DiscriminatorEpilogue(config.channels_at(4), self.cond_dim)

    def forward(
        self,
        img: torch.Tensor,  # [n, img_channels, R, R]
        cond: torch.Tensor,  # [n, cond_dim]
    ) -> torch.Tensor:  # [n] logits, high = real
        assert_shape(img, [None, *self.in_shape])
        assert_shape(cond, [len(img), self.cond_dim])
        return self.epilogue(self.convs(img), cond)


GENERATORS: dict[str, type[ConditionalGenerator]] = {
    "stylegan2": StyleGAN2Generator,
    "cgan": CGANGenerator,
}
DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "stylegan2": StyleGAN2Discriminator,
    "cgan": ProjectionDiscriminator,
}


def build_generator(config: GeneratorConfig) -> ConditionalGenerator:
    return GENERATORS[config.architecture](config)


def build_discriminator(config: GeneratorConfig) -> nn.Module:
    return DISCRIMINATORS[config.architecture](config)
