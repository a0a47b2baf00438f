"""Feature spaces for measuring generators, learnt here on the cohort.

Inception weights cannot be downloaded, so the Fréchet distance, KID and
precision/recall use the penultimate features of a small CNN trained on the
cohort itself to classify the finding and regress its severity. A second,
separately seeded and wider network of the same kind, trained on the training
split only, is the independent severity regressor for controllability.
Memorisation uses :func:`pixel_descriptor` instead: the CNN is trained to
ignore identity, and a copied training image is a pixel-level copy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genworker.cohorts import Cohort

FORMAT = "gantry-feature-net-1"
MAX_INPUT_SIZE = 128  # images are area-downsampled to at most this many pixels a side
SEVERITY_LOSS_WEIGHT = 10.0  # severity MSE is ~0.01-0.1; weigh it level with cross-entropy


@dataclass(frozen=True)
class FeatureNetConfig:
    findings: tuple[str, ...]
    input_size: int  # images are resized to [input_size, input_size] on the way in
    width: int = 16  # channels at full and half resolution; doubles per level after, up to 8x
    feature_dim: int = 128  # length of the embedding (penultimate layer)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureNetConfig:
        return cls(**{**data, "findings": tuple(data["findings"])})


class FeatureNet(nn.Module):
    """CNN with a finding-classification head and a severity-regression head."""

    def __init__(self, config: FeatureNetConfig) -> None:
        super().__init__()
        self.config = config
        levels = max(1, int(math.log2(config.input_size)) - 2)  # down to about 4x4
        layers: list[nn.Module] = _conv_block(1, config.width, stride=1)
        channels = config.width
        for level in range(levels):
            out = config.width * 2 ** min(level, 3)
            layers += _conv_block(channels, out, stride=2) + _conv_block(out, out, stride=1)
            channels = out
        self.trunk = nn.Sequential(*layers)
        self.embedding = nn.Sequential(nn.Linear(channels, config.feature_dim), nn.LeakyReLU(0.2))
        self.finding_head = nn.Linear(config.feature_dim, len(config.findings))
        self.severity_head = nn.Linear(config.feature_dim, 1)

    def forward(
        self,
        images: torch.Tensor,  # [N, H, W] in [0, 1]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embedding [N, feature_dim], finding logits [N, F], severity [N] in (0, 1)."""
        assert images.ndim == 3, f"images must be [N, H, W], got {tuple(images.shape)}"
        x = images[:, None].float() * 2 - 1  # [N, 1, H, W] in [-1, 1]
        size = self.config.input_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="area")
        x = self.trunk(x).mean(dim=(2, 3))  # [N, C]
        features = self.embedding(x)
        severity = torch.sigmoid(self.severity_head(features))[:, 0]
        return features, self.finding_head(features), severity

    @torch.no_grad()
    def embed(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Penultimate features float32 [N, feature_dim] of images [N, H, W] in [0, 1]."""
        return self._run(images, batch_size, output=0)

    @torch.no_grad()
    def predict_severity(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Predicted severity float32 [N] of images [N, H, W] in [0, 1]."""
        return self._run(images, batch_size, output=2)

    def _run(self, images: np.ndarray, batch_size: int, output: int) -> np.ndarray:
        self.eval()
        device = next(self.parameters()).device
        results = [
            self(torch.as_tensor(images[i : i + batch_size], device=device))[output].cpu().numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(results).astype(np.float32)

    def save(self, path: str | Path) -> None:
        """A plain dict (format tag, config, state_dict) loadable with weights_only=True."""
        config = {**asdict(self.config), "findings": list(self.config.findings)}
        state = {name: tensor.cpu() for name, tensor in self.state_dict().items()}
        torch.save({"format": FORMAT, "config": config, "state_dict": state}, path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> FeatureNet:
        data = torch.load(path, map_location=device, weights_only=True)
        if data.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file")
        net = cls(FeatureNetConfig.from_dict(data["config"]))
        net.load_state_dict(data["state_dict"])
        return net.to(device).eval()


def _conv_block(channels_in: int, channels_out: int, *, stride: int) -> list[nn.Module]:
    """Conv, batch norm, leaky ReLU. Without the normalisation, PyTorch's default init shrinks
    the activations through the trunk until the net collapses to a constant prediction."""
    return [
        nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.LeakyReLU(0.2),
    ]


def train_feature_net(
    cohort: Cohort,
    *,
    epochs: int,
    seed: int,
    device: str | torch.device = "cpu",
    width: int = 16,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
) -> FeatureNet:
    """Train a :class:`FeatureNet` on every image of ``cohort`` (pass a split to restrict).

    Light augmentation (shifts of up to 1/16 of the image, intensity gain and
    offset) keeps the net from keying on exact pixel positions or grey levels,
    so it also reads generated images.
    """
    torch.manual_seed(seed)
    config = FeatureNetConfig(
        findings=tuple(cohort.findings),
        input_size=min(cohort.resolution, MAX_INPUT_SIZE),
        width=width,
    )
    net = FeatureNet(config).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=max(1, epochs * math.ceil(len(cohort.images) / batch_size))
    )
    images = torch.as_tensor(cohort.images, dtype=torch.float32)
    finding = torch.as_tensor(cohort.finding, dtype=torch.int64)
    severity = torch.as_tensor(cohort.severity, dtype=torch.float32)
    shuffler = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=shuffler)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = _augment(images[rows], shuffler).to(device)
            _, logits, predicted = net(batch)
            loss = F.cross_entropy(logits, finding[rows].to(device))
            loss = loss + SEVERITY_LOSS_WEIGHT * F.mse_loss(predicted, severity[rows].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    return net.eval()


def pixel_descriptor(images: np.ndarray, *, size: int = 32) -> np.ndarray:
    """Images [N, H, W] as float32 [N, size*size]: area-downsampled, zero mean, unit norm.

    The squared distance of two descriptors is 2 - 2 x their pixel correlation,
    so near-copies of an image sit near it whatever their global brightness.
    """
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None]  # [N, 1, H, W]
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="area")
    flat = x.reshape(len(x), -1).numpy().astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return (flat / np.maximum(norms, 1e-12)).astype(np.float32)


def _augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shift (replicated edges) and per-image intensity gain/offset of [N, H, W]."""
    n, height, width = images.shape
    pad = max(1, width // 16)
    padded = F.pad(images[:, None], (pad, pad, pad, pad), mode="replicate")[:, 0]
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    shifted = padded[:, dy : dy + height, dx : dx + width]
    gain = 1 + 0.2 * (torch.rand(n, 1, 1, generator=generator) - 0.5)
    offset = 0.1 * (torch.rand(n, 1, 1, generator=generator) - 0.5)
    return (shifted * gain + offset).clamp(0, 1)
