"""Loading any generator a worker may be given, by the format its file declares."""

from __future__ import annotations

from pathlib import Path

import torch

from genworker.checkpoint import GENERATOR_FORMAT, LoadedGenerator, load_generator
from genworker.latent.model import FORMAT as LATENT_FORMAT
from genworker.latent.model import LatentModel, load_latent_model
from genworker.scripted import FORMAT as SCRIPTED_FORMAT
from genworker.scripted import ScriptedGenerator, load_scripted_generator
from genworker.stylegan.model import FORMAT as IMPORTED_STYLEGAN_FORMAT
from genworker.stylegan.model import ImportedStyleGAN, load_imported


def load_model(
    path: Path, device: str = "cpu"
) -> LoadedGenerator | LatentModel | ScriptedGenerator | ImportedStyleGAN:
    """A pixel-space generator, a latent model, a TorchScript generator (with its card) or
    an imported StyleGAN; an error naming the format otherwise."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    kind = payload.get("format") if isinstance(payload, dict) else None
    if kind == GENERATOR_FORMAT:
        return load_generator(path, device=device)
    if kind == LATENT_FORMAT:
        return load_latent_model(path, device=device)
    if kind == SCRIPTED_FORMAT:
        return load_scripted_generator(path, device=device)
    if kind == IMPORTED_STYLEGAN_FORMAT:
        return load_imported(path, device=device)
    raise ValueError(f"{path.name} is not a Gantry generator (format {kind!r})")
