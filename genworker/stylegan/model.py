"""An imported StyleGAN generator on disk and at work.

The file (``gantry-stylegan/1``) is a plain dict: the family, the mapping and synthesis
descriptions (:mod:`genworker.stylegan.spec`), the weights, one w direction per finding
and the model card. It loads with ``torch.load(weights_only=True)``; nothing in it runs.

A progression series holds z fixed: w starts at the mapping of z (for a class-conditional
model, under its "normal" class) and walks along the finding's direction by the severity
(for a class-conditional model the difference of the class means of w, so severity 1
reaches the disease class's mean offset). Truncation pulls the walked w toward the
network's mean w, as NVIDIA's truncation does. This is an imported model's one way to make
a series, whichever method a template names. Images come without masks: an imported
generator has no segmentation of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genworker.checkpoint import read_checked, write_with_card
from genworker.networks import z_from_seed
from genworker.sampling import Series, SeriesSpec, synthesize
from genworker.stylegan import stylegan2, stylegan3

FORMAT = "gantry-stylegan/1"
FAMILIES = {"stylegan2": stylegan2, "stylegan3": stylegan3}
NORMAL_CLASS = "normal"
# The class means of w: over this many z drawn from this seed.
CLASS_MEAN_SAMPLES = 1024
CLASS_MEAN_SEED = 2**31 - 1


class StyleGANGenerator(nn.Module):
    """NVIDIA's ``G_ema`` as Gantry's own networks: ``mapping`` then ``synthesis``."""

    def __init__(self, family: str, mapping: dict, synthesis: dict) -> None:
        super().__init__()
        if family not in FAMILIES:
            raise ValueError(f"unknown StyleGAN family {family!r}; known: {sorted(FAMILIES)}")
        self.family = family
        self.mapping = FAMILIES[family].MappingNetwork(mapping)
        self.synthesis = FAMILIES[family].SynthesisNetwork(synthesis)
        if self.mapping.num_ws != self.synthesis.num_ws:
            raise ValueError("the mapping and synthesis networks disagree on num_ws")
        self.z_dim = self.mapping.z_dim
        self.c_dim = self.mapping.c_dim
        self.w_dim = self.mapping.w_dim
        self.num_ws = self.mapping.num_ws

    @property
    def device(self) -> torch.device:
        return self.mapping.w_avg.device

    def one_hot(self, classes: Sequence[int]) -> torch.Tensor:  # [N, c_dim]
        c = torch.zeros(len(classes), self.c_dim, device=self.device)
        if self.c_dim:
            c[torch.arange(len(classes)), torch.as_tensor(list(classes))] = 1
        return c

    @torch.no_grad()
    def class_mean_w(self) -> torch.Tensor:  # [c_dim, w_dim]
        """The mean untruncated w of each class, over fixed latents."""
        z = torch.from_numpy(z_from_seed(CLASS_MEAN_SEED, CLASS_MEAN_SAMPLES, self.z_dim))
        z = z.to(self.device)
        means = [
            self.mapping(z, self.one_hot([k] * len(z)))[:, 0].mean(dim=0) for k in range(self.c_dim)
        ]
        return torch.stack(means) if means else torch.zeros(0, self.w_dim)


@dataclass
class ImportedStyleGAN:
    """An imported generator, ready for inference (eval mode, no gradients)."""

    generator: StyleGANGenerator
    card: dict
    directions: dict[str, np.ndarray]  # finding -> float32 [w_dim], w shift per unit severity
    sha256: str
    max_batch: int = 8

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    def compile(self) -> None:
        self.generator.synthesis = torch.compile(self.generator.synthesis)

    def start_class(self) -> list[int]:
        """The class a series starts from: the "normal" one, where the model has classes."""
        if not self.generator.c_dim:
            return []
        return [list(self.card["classes"]).index(NORMAL_CLASS)]

    @torch.no_grad()
    def series_ws(self, spec: SeriesSpec) -> torch.Tensor:  # [T, num_ws, w_dim]
        g = self.generator
        if np.shape(spec.z) != (g.z_dim,):
            raise ValueError(f"z must have shape [{g.z_dim}], got {list(np.shape(spec.z))}")
        if spec.finding not in self.directions:
            raise KeyError(
                f"this model has no direction for {spec.finding!r}; it knows "
                f"{sorted(self.directions) or 'none yet'}"
            )
        z = torch.from_numpy(np.asarray(spec.z, np.float32)[None]).to(g.device)
        c = g.one_hot(self.start_class()) if g.c_dim else torch.zeros(1, 0, device=g.device)
        w0 = g.mapping(z, c)  # [1, num_ws, w_dim], untruncated
        direction = torch.from_numpy(self.directions[spec.finding]).to(g.device)
        severity = torch.as_tensor(np.asarray(spec.severities, np.float32), device=g.device)
        ws = w0 + severity[:, None, None] * direction[None, None, :]
        return g.mapping.w_avg.lerp(ws, spec.truncation) if spec.truncation != 1 else ws

    def progression_batch(self, specs: Sequence[SeriesSpec]) -> list[Series]:
        """The series of each spec (see genworker.sampling.progression_batch)."""
        ws = [self.series_ws(spec) for spec in specs]
        with torch.no_grad():
            images, self.max_batch = synthesize(
                self.generator.synthesis, torch.cat(ws), max_batch=self.max_batch
            )
        pictures = to_pictures(images)
        series, start = [], 0
        for spec, w in zip(specs, ws, strict=True):
            rows = slice(start, start + len(w))
            start += len(w)
            series.append(
                Series(
                    images=pictures[rows],
                    masks=None,
                    w=w[:, 0].float().cpu().numpy(),
                    severities=np.asarray(spec.severities, dtype=np.float32),
                )
            )
        return series


def to_pictures(images: torch.Tensor) -> np.ndarray:  # [n, C, R, R] -> float32 [n, R, R]
    """Display pictures in [0, 1]: the image, or the mean of its colour channels."""
    return ((images.float().mean(dim=1) + 1) / 2).clamp(0, 1).cpu().numpy()


def save_imported(
    path: str | Path,
    generator: StyleGANGenerator,
    descriptions: dict,
    *,
    model_card: dict,
    directions: dict[str, np.ndarray],
) -> str:
    """Write ``path`` and its sidecar card (as genworker.checkpoint does); returns the
    file's sha256."""
    path = Path(path)
    card_json = json.dumps(model_card, indent=2, sort_keys=True)
    payload = {
        "format": FORMAT,
        "family": generator.family,
        "mapping": descriptions["mapping"],
        "synthesis": descriptions["synthesis"],
        "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "directions": {
            finding: torch.from_numpy(np.asarray(vector, np.float32))
            for finding, vector in directions.items()
        },
        "model_card": json.loads(card_json),
    }
    return write_with_card(payload, path, json.loads(card_json))


def load_imported(path: str | Path, device: str | torch.device = "cpu") -> ImportedStyleGAN:
    """Rebuild an imported generator; refuses a file whose sidecar names another sha256."""
    payload, digest = read_checked(path, FORMAT)
    generator = StyleGANGenerator(payload["family"], payload["mapping"], payload["synthesis"])
    generator.load_state_dict(payload["state_dict"])
    generator.to(device).eval().requires_grad_(False)
    directions = {k: v.numpy().astype(np.float32) for k, v in payload["directions"].items()}
    return ImportedStyleGAN(generator, payload["model_card"], directions, digest)
