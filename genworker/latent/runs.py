"""Resumable training loops: one state file per stage, saved atomically every few minutes.

Every stage of a latent model trains by the same loop: draw a batch, take a step, log.
:func:`run_steps` owns what they share: the step count, the time budget, the random
streams (torch's and a numpy Generator), saving the state and continuing from it
exactly. A state holds only tensors, numbers and strings, so it loads with
``torch.load(weights_only=True)``.

Under ``torchrun`` every stage trains data-parallel (:class:`Ranks`): every rank holds the
same random streams and draws the same global batch of ``world x batch_size`` rows, keeps
its own share of it, and its networks are wrapped in DistributedDataParallel, which
averages the gradients, so the step equals one process's step on the whole global batch
(for losses that are means over rows; the anatomy GAN's comes close, see
:mod:`genworker.latent.anatomy_gan`). Only rank 0 prints, logs and writes states; the time budget
stops every rank at the same step. A state holds no trace of the rank count, so a run
resumes on any number of ranks, and with the same global batch it continues exactly as it
would have.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

# How long a rank waits for the others at a collective: rank 0 alone simulates the cohort.
COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Ranks:
    """Where this process trains: its place among the processes training together (rank 0
    of 1 alone) and its device."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of ``world * batch_size`` rows."""
        return slice(self.rank * batch_size, (self.rank + 1) * batch_size)

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` as the step should call it: in DistributedDataParallel under
        torchrun (its parameters stay ``module``'s, which is what states save)."""
        if self.world == 1:
            return module
        device = next(module.parameters()).device
        return DistributedDataParallel(
            module, device_ids=[device] if device.type == "cuda" else None
        )

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any rank (each rank asks with its own)."""
        if self.world == 1:
            return flag
        value = torch.tensor([float(flag)], device=_collective_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the ranks."""
        if self.world == 1 or not values:
            return values
        tensor = torch.tensor(
            list(values.values()), dtype=torch.float64, device=_collective_device()
        )
        dist.all_reduce(tensor)
        return dict(zip(values, (tensor / self.world).tolist(), strict=True))


ALONE = Ranks()  # one process, no torchrun


def _collective_device() -> torch.device:
    """NCCL reduces tensors on the GPU, gloo on the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def init_ranks(device: str = "cpu") -> Ranks:
    """Join the torchrun job this process belongs to, once: on ``cuda``, each rank on its
    node's GPU number LOCAL_RANK, through NCCL; on the CPU through gloo. Rank 0 of 1 on
    ``device`` when it was not started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    on_gpu = device.startswith("cuda")
    if on_gpu and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if world == 1:
        return Ranks(device=device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_gpu else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return Ranks(dist.get_rank(), dist.get_world_size(), device)


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


def cosine_lr(
    optimisers: Sequence[torch.optim.Optimizer],
    lr: float,
    index: int,
    steps: int,
    floor: float = 0.1,
) -> None:
    """Set the optimisers' learning rate for step ``index`` of ``steps``: a cosine from
    ``lr`` down to ``floor`` x ``lr`` at the end (``floor`` 1 keeps it constant)."""
    rate = float(lr * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * index / steps))))
    for optimiser in optimisers:
        for group in optimiser.param_groups:
            group["lr"] = rate


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
    ranks: Ranks = ALONE,
) -> Progress:
    """Run ``step`` until ``total_steps`` (counting earlier runs), or until this call has
    run ``max_minutes`` or ``max_steps``; continue from ``state_path`` if it exists, and save
    to it every ``save_every_s`` and at the end (rank 0; every rank reads it to resume)."""
    progress = load_state(state_path, modules, rng) if state_path.exists() else Progress()
    started = time.monotonic()
    last_save = started
    first_step = progress.step
    while progress.step < total_steps:
        out_of_time = max_minutes is not None and time.monotonic() - started > 60 * max_minutes
        if ranks.any(out_of_time):
            break
        if max_steps is not None and progress.step - first_step >= max_steps:
            break
        wall, cpu = time.perf_counter(), time.process_time()
        values = step(progress.step)
        progress.seconds += time.perf_counter() - wall
        progress.cpu_seconds += time.process_time() - cpu
        progress.step += 1
        if progress.step % log_every == 0 or progress.step == total_steps:
            values = ranks.mean(values)
            progress.log({"step": progress.step, **values})
            shown = " ".join(f"{key} {value:.4g}" for key, value in values.items())
            if ranks.is_main:
                print(f"{label} step {progress.step}/{total_steps} {shown}", flush=True)
        if ranks.is_main and time.monotonic() - last_save > save_every_s:
            save_state(state_path, modules, rng, progress)
            last_save = time.monotonic()
    if ranks.is_main and progress.step > first_step:  # a finished stage is left as it is
        save_state(state_path, modules, rng, progress)
    ranks.barrier()  # no rank goes on to read what rank 0 has not yet written
    return progress
