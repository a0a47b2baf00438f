"""Resumable training loops: one state file per stage, saved atomically every few minutes.

Every stage of a latent model trains by the same loop: draw a batch, take a step, log.
:func:`run_steps` owns what they share: the step count, the time budget, the random
streams (torch's and a numpy Generator), saving the state and continuing from it
exactly. A state holds only tensors, numbers and strings, so it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn


@dataclass
class Progress:
    step: int = 0
    seconds: float = 0.0  # wall time spent in steps, over every resume
    cpu_seconds: float = 0.0  # process CPU time spent in steps, over every resume
    history: dict[str, list[float]] = field(default_factory=dict)

    def log(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.history.setdefault(key, []).append(float(value))


def _rng_state(rng: np.random.Generator) -> dict:
    state = rng.bit_generator.state
    return {
        "bit_generator": state["bit_generator"],
        "state": int(state["state"]["state"]),
        "inc": int(state["state"]["inc"]),
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def _set_rng_state(rng: np.random.Generator, saved: dict) -> None:
    rng.bit_generator.state = {
        "bit_generator": saved["bit_generator"],
        "state": {"state": int(saved["state"]), "inc": int(saved["inc"])},
        "has_uint32": int(saved["has_uint32"]),
        "uinteger": int(saved["uinteger"]),
    }


def save_state(
    path: Path,
    modules: dict[str, nn.Module | torch.optim.Optimizer],
    rng: np.random.Generator,
    progress: Progress,
) -> None:
    payload = {
        "modules": {name: module.state_dict() for name, module in modules.items()},
        "numpy_rng": _rng_state(rng),
        "torch_rng": torch.get_rng_state(),
        "step": progress.step,
        "seconds": progress.seconds,
        "cpu_seconds": progress.cpu_seconds,
        "history": progress.history,
    }
    temporary = path.with_suffix(".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_state(
    path: Path,
    modules: dict[str, nn.Module | torch.optim.Optimizer],
    rng: np.random.Generator,
) -> Progress:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    for name, module in modules.items():
        module.load_state_dict(payload["modules"][name])
    _set_rng_state(rng, payload["numpy_rng"])
    torch.set_rng_state(payload["torch_rng"])
    return Progress(
        step=int(payload["step"]),
        seconds=float(payload["seconds"]),
        cpu_seconds=float(payload["cpu_seconds"]),
        history={key: list(values) for key, values in payload["history"].items()},
    )


def run_steps(
    step: Callable[[int], dict[str, float]],  # step(index) -> values to log
    *,
    total_steps: int,
    state_path: Path,
    modules: dict[str, nn.Module | torch.optim.Optimizer],
    rng: np.random.Generator,
    max_minutes: float | None = None,
    max_steps: int | None = None,
    save_every_s: float = 300.0,
    log_every: int = 50,
    label: str = "",
) -> Progress:
    """Run ``step`` until ``total_steps`` (counting earlier runs), or until this call has
    run ``max_minutes`` or ``max_steps``; continue from ``state_path`` if it exists, and save
    to it every ``save_every_s`` and at the end."""
    progress = load_state(state_path, modules, rng) if state_path.exists() else Progress()
    started = time.monotonic()
    last_save = started
    first_step = progress.step
    while progress.step < total_steps:
        if max_minutes is not None and time.monotonic() - started > 60 * max_minutes:
            break
        if max_steps is not None and progress.step - first_step >= max_steps:
            break
        wall, cpu = time.perf_counter(), time.process_time()
        values = step(progress.step)
        progress.seconds += time.perf_counter() - wall
        progress.cpu_seconds += time.process_time() - cpu
        progress.step += 1
        if progress.step % log_every == 0 or progress.step == total_steps:
            progress.log({"step": progress.step, **values})
            shown = " ".join(f"{key} {value:.4g}" for key, value in values.items())
            print(f"{label} step {progress.step}/{total_steps} {shown}", flush=True)
        if time.monotonic() - last_save > save_every_s:
            save_state(state_path, modules, rng, progress)
            last_save = time.monotonic()
    save_state(state_path, modules, rng, progress)
    return progress
