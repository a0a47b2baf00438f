"""Generator checkpoints and training states on disk.

An exported generator is ``<name>.pt``: a plain dict (format tag, config, EMA
generator weights, latent directions, model card) that loads with
``torch.load(weights_only=True)``, so loading never runs code from the file. Beside it,
``<name>.card.json`` holds the model card and the file's sha256 for the web process,
which does not import torch.

A training state (``save_training_state``) is a separate, larger file holding
everything needed to resume training exactly; it is never shipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genworker.networks import ConditionalGenerator, GeneratorConfig, build_generator

GENERATOR_FORMAT = "gantry-generator/1"
TRAINING_STATE_FORMAT = "gantry-training-state/1"


@dataclass
class LoadedGenerator:
    """An exported generator, ready for inference (eval mode, no gradients).

    ``max_batch`` is the most images one synthesis call may take; sampling halves it when a
    call runs out of GPU memory, so the generator remembers what fits on its device.
    """

    generator: ConditionalGenerator
    card: dict
    directions: dict[str, np.ndarray]  # finding -> float32 [w_dim], w shift per unit severity
    sha256: str
    max_batch: int = 64
    # What sampling calls to synthesise: generator.synthesis, unless compiled (see compile()).
    synthesis: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        self.synthesis = self.synthesis or self.generator.synthesis

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    def compile(self) -> None:
        """Synthesise with :class:`genworker.compiled.CompiledSynthesis` from now on. The
        ``max_batch`` shape compiles here, so that a machine that cannot compile (no C++
        compiler for a CPU build) fails now, not in the middle of a job."""
        from genworker.compiled import CompiledSynthesis

        self.synthesis = CompiledSynthesis(self.generator)
        g = self.generator
        with torch.no_grad():
            self.synthesis(torch.zeros(self.max_batch, g.num_ws, g.w_dim, device=g.device))


def default_max_batch(device: str) -> int:
    """The images per synthesis call a worker starts with on ``device`` (unless
    ``GANTRY_BATCH_IMAGES`` says otherwise)."""
    return 256 if device.startswith("cuda") else 8


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_path(path: str | Path) -> Path:
    """The sidecar of ``models/brain.pt`` is ``models/brain.card.json``."""
    return Path(path).with_suffix(".card.json")


def shipped_generators(folder: str | Path) -> list[Path]:
    """The generator checkpoints in ``folder``: each ``.pt`` with its card beside it (a
    folder of models also holds feature networks, which have none)."""
    return sorted(path for path in Path(folder).glob("*.pt") if card_path(path).exists())


def save_generator(
    path: str | Path,
    generator: ConditionalGenerator,
    *,
    model_card: dict,
    directions: dict[str, np.ndarray] | None = None,
    half: bool = False,  # store floating-point weights as float16 (half the size)
) -> str:
    """Write ``path`` and its sidecar card; returns the file's sha256."""
    path = Path(path)
    card_json = json.dumps(model_card, indent=2, sort_keys=True)  # fails early if not JSON
    state = {
        name: (value.half() if half and value.is_floating_point() else value).detach().cpu()
        for name, value in generator.state_dict().items()
    }
    payload = {
        "format": GENERATOR_FORMAT,
        "config": generator.config.to_dict(),
        "state_dict": state,
        "directions": {
            finding: torch.from_numpy(np.asarray(vector, dtype=np.float32))
            for finding, vector in (directions or {}).items()
        },
        "model_card": json.loads(card_json),
    }
    return write_with_card(payload, path, json.loads(card_json))


def write_with_card(payload: dict, path: str | Path, card: dict) -> str:
    """Write ``payload`` to ``path`` and its sidecar card (the card, the file's name and its
    sha256), each through a temporary file; returns the sha256."""
    path = Path(path)
    _atomic_torch_save(payload, path)
    digest = sha256_file(path)
    sidecar = {**card, "file": path.name, "sha256": digest}
    _atomic_write_text(card_path(path), json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return digest


def read_checked(path: str | Path, file_format: str) -> tuple[dict, str]:
    """The payload and sha256 of a file written by :func:`write_with_card`: refused when its
    sidecar names another sha256 or it is not ``file_format``. Weights only: nothing in the
    file runs."""
    path = Path(path)
    digest = sha256_file(path)
    sidecar = card_path(path)
    if sidecar.exists():
        expected = json.loads(sidecar.read_text())["sha256"]
        if expected != digest:
            raise ValueError(f"{path} has sha256 {digest} but {sidecar.name} expects {expected}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != file_format:
        raise ValueError(f"{path} is not a {file_format} checkpoint")
    return payload, digest


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> LoadedGenerator:
    """Rebuild an exported generator; refuses a file whose sidecar names another sha256."""
    payload, digest = read_checked(path, GENERATOR_FORMAT)
    generator = build_generator(GeneratorConfig.from_dict(payload["config"]))
    generator.load_state_dict(
        {
            name: value.float() if value.is_floating_point() else value
            for name, value in payload["state_dict"].items()
        }
    )
    generator.to(device).eval().requires_grad_(False)
    directions = {
        finding: vector.numpy().astype(np.float32)
        for finding, vector in payload["directions"].items()
    }
    return LoadedGenerator(generator, payload["model_card"], directions, digest)


def save_training_state(path: str | Path, state: dict) -> None:
    """Write a training state (see ``genworker.training``) atomically."""
    _atomic_torch_save({**state, "format": TRAINING_STATE_FORMAT}, Path(path))


def load_training_state(path: str | Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != TRAINING_STATE_FORMAT:
        raise ValueError(f"{path} is not a {TRAINING_STATE_FORMAT} file")
    return state


def _atomic_torch_save(payload: dict, path: Path) -> None:
    """Save through a temporary file so a killed run never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
