"""Generators from other tooling behind one small contract: TorchScript and a JSON card.

A user's generator (a MONAI generative model, a diffusion sampler wrapped in a loop, a GAN
trained elsewhere) is scripted with ``torch.jit.script`` and described by a card:

- the module's ``forward(z, c) -> images``: z float32 [n, z_dim], c float32 [n, dim] (the
  conditions below), images float [n, C, R, R] in [-1, 1]. The images must be a function
  of z and c alone (a sampler that needs noise takes it from z), so that a case is
  reproducible from its seed;
- ``z_dim``; ``resolution`` R; ``channels`` (one name per image channel, e.g. ``["T1",
  "FLAIR"]``); ``modality`` (``MR`` or ``DX``); ``pixel_spacing_mm``;
- ``conditions``: ``findings`` (c begins with one one-hot column per finding, in this
  order) and ``continuous``, an ordered object of the columns after them, each with the
  range the module takes: ``severity`` (required: Gantry's severity 0..1 maps linearly onto
  the range), ``age`` (years, clamped into the range) and ``sex`` (F is the range's low end,
  M its high end);
- optionally a TorchScript segmenter, ``forward(images) -> masks``: images as the generator
  gives them, masks [n, R, R] or [n, 1, R, R], lesion where >= 0.5. Without one, cases
  carry no ground truth.

``python -m genworker import-torchscript`` checks all of this by running the modules once and
packs them with the card into one ``<name>.pt`` (a plain dict with the modules' bytes that
loads with ``torch.load(weights_only=True)``) and its sidecar card, which the site registers
like any other generator. A series moves severity through the condition, z fixed; the latent
vector kept with each image is its z.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genworker.checkpoint import read_checked, write_with_card
from genworker.dicom import SOP_CLASS_FOR_MODALITY
from genworker.sampling import Series, SeriesSpec, synthesize

FORMAT = "gantry-torchscript/1"
ARCHITECTURE = "torchscript"
CONTINUOUS = ("severity", "age", "sex")  # the conditions Gantry can set
RANGE_SLACK = 1e-3  # images may overshoot [-1, 1] by this much (float rounding)
PROBE_ROWS = 2


class ContractError(ValueError):
    """A card or module that breaks the contract; the message names what is wrong."""


@dataclass(frozen=True)
class ScriptedCard:
    """The validated card: what the modules take and give."""

    name: str
    z_dim: int
    findings: tuple[str, ...]
    continuous: tuple[tuple[str, float, float], ...]  # (name, low, high) in column order
    resolution: int
    channels: tuple[str, ...]
    modality: str
    pixel_spacing_mm: float

    @property
    def condition_dim(self) -> int:
        return len(self.findings) + len(self.continuous)

    def encode(
        self, finding: str, severities: Sequence[float], age: float, sex: str
    ) -> np.ndarray:  # float32 [len(severities), condition_dim]
        """The c of each severity of one series."""
        if finding not in self.findings:
            raise ValueError(
                f"finding {finding!r} is not one of this model's {list(self.findings)}"
            )
        severity = np.asarray(severities, dtype=np.float32)
        if np.any(severity < 0) or np.any(severity > 1):
            raise ValueError("severity must lie in [0, 1]")
        c = np.zeros((len(severity), self.condition_dim), np.float32)
        c[:, self.findings.index(finding)] = 1.0
        for k, (name, low, high) in enumerate(self.continuous, start=len(self.findings)):
            if name == "severity":
                c[:, k] = low + severity * (high - low)
            elif name == "age":
                c[:, k] = min(max(age, low), high)
            else:  # sex
                c[:, k] = high if sex == "M" else low
        return c


def validate_card(card: dict) -> ScriptedCard:
    """The card as :class:`ScriptedCard`; a :class:`ContractError` naming the first field
    that is missing or wrong."""
    if not isinstance(card, dict):
        raise ContractError("the card must be a JSON object")

    def field(key: str, kind: type | tuple[type, ...]):
        if key not in card:
            raise ContractError(f"the card has no {key!r}")
        value = card[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ContractError(f"the card's {key!r} has the wrong type ({value!r})")
        return value

    name = field("name", str)
    z_dim = field("z_dim", int)
    resolution = field("resolution", int)
    if z_dim < 1 or resolution < 8:
        raise ContractError("z_dim must be at least 1 and resolution at least 8")
    channels = field("channels", list)
    if not channels or not all(isinstance(c, str) and c for c in channels):
        raise ContractError("'channels' must name each image channel (a non-empty list)")
    modality = field("modality", str)
    if modality not in SOP_CLASS_FOR_MODALITY:
        raise ContractError(
            f"modality {modality!r} is not one Gantry writes ({', '.join(SOP_CLASS_FOR_MODALITY)})"
        )
    spacing = float(field("pixel_spacing_mm", (int, float)))
    if not (math.isfinite(spacing) and spacing > 0):
        raise ContractError("pixel_spacing_mm must be a positive number")
    findings, columns = _conditions(field("conditions", dict))
    return ScriptedCard(
        name=name,
        z_dim=z_dim,
        findings=tuple(findings),
        continuous=tuple(columns),
        resolution=resolution,
        channels=tuple(channels),
        modality=modality,
        pixel_spacing_mm=spacing,
    )


def _conditions(
    conditions: dict,
) -> tuple[list[str], list[tuple[str, float, float]]]:  # findings, continuous columns
    findings = conditions.get("findings")
    if not (isinstance(findings, list) and findings and all(isinstance(f, str) for f in findings)):
        raise ContractError("conditions.findings must list at least one finding")
    continuous = conditions.get("continuous")
    if not isinstance(continuous, dict) or "severity" not in continuous:
        raise ContractError("conditions.continuous must give at least severity's range")
    columns = []
    for key, bounds in continuous.items():
        if key not in CONTINUOUS:
            raise ContractError(
                f"condition {key!r} is not one Gantry can set ({', '.join(CONTINUOUS)})"
            )
        valid = (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(isinstance(b, int | float) and math.isfinite(b) for b in bounds)
            and bounds[0] < bounds[1]
        )
        if not valid:
            raise ContractError(f"the range of {key!r} must be [low, high] with low < high")
        columns.append((key, float(bounds[0]), float(bounds[1])))
    return findings, columns


@dataclass
class ScriptedGenerator:
    """A packed TorchScript generator, ready to sample progression series."""

    generator: torch.jit.ScriptModule
    segmenter: torch.jit.ScriptModule | None
    contract: ScriptedCard
    card: dict  # the sidecar card: the user's, with architecture and masks
    sha256: str
    device: str = "cpu"
    max_batch: int = 8

    @property
    def z_dim(self) -> int:
        return self.contract.z_dim

    def compile(self) -> None:
        """Nothing to do: TorchScript modules are compiled already."""

    @torch.no_grad()
    def progression_batch(self, specs: Sequence[SeriesSpec]) -> list[Series]:
        """The series of each spec (see :func:`genworker.sampling.progression_batch`)."""
        z_rows, c_rows = [], []
        for spec in specs:
            if spec.method != "condition":
                raise ValueError(
                    "a TorchScript generator moves severity through its condition only; "
                    f"the template asks for {spec.method!r}"
                )
            if np.shape(spec.z) != (self.z_dim,):
                raise ValueError(f"z must have shape [{self.z_dim}], got {list(np.shape(spec.z))}")
            c = self.contract.encode(spec.finding, spec.severities, spec.age, spec.sex)
            z_rows.append(np.repeat(np.asarray(spec.z, np.float32)[None], len(c), 0))
            c_rows.append(c)
        z = np.concatenate(z_rows)
        images, self.max_batch = synthesize(
            self._generate,
            torch.from_numpy(np.concatenate([z, np.concatenate(c_rows)], axis=1)),
            max_batch=self.max_batch,
        )
        masks = None if self.segmenter is None else self._segment(images)
        pictures = ((images.float() + 1) / 2).clamp(0, 1).numpy()
        series, start = [], 0
        for spec in specs:
            rows = slice(start, start + len(spec.severities))
            start = rows.stop
            series.append(
                Series(
                    images=pictures[rows, 0],
                    masks=None if masks is None else masks[rows],
                    w=z[rows],
                    severities=np.asarray(spec.severities, dtype=np.float32),
                    channels=self.contract.channels,
                    more_channels=pictures[rows, 1:],
                )
            )
        return series

    def _generate(self, zc: torch.Tensor) -> torch.Tensor:  # [n, z_dim + dim] -> [n, C, R, R]
        zc = zc.to(self.device)
        images = self.generator(zc[:, : self.z_dim], zc[:, self.z_dim :])
        _check_images(images, self.contract, len(zc))
        return images

    def _segment(self, images: torch.Tensor) -> np.ndarray:  # [n, C, R, R] -> bool [n, R, R]
        parts = []
        for start in range(0, len(images), self.max_batch):
            batch = images[start : start + self.max_batch].to(self.device)
            parts.append(_check_masks(self.segmenter(batch), self.contract, len(batch)).cpu())
        return (torch.cat(parts) >= 0.5).numpy()


def _check_images(images: object, contract: ScriptedCard, n: int) -> None:
    expected = (n, len(contract.channels), contract.resolution, contract.resolution)
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ContractError("the generator's forward(z, c) must return a float tensor")
    if tuple(images.shape) != expected:
        raise ContractError(
            f"the generator's forward(z, c) must return images {list(expected)} "
            f"(n, channels, resolution, resolution), got {list(images.shape)}"
        )
    if not torch.isfinite(images).all():
        raise ContractError("the generator returned values that are not finite")
    low, high = float(images.min()), float(images.max())
    if low < -1 - RANGE_SLACK or high > 1 + RANGE_SLACK:
        raise ContractError(
            f"the generator's images must lie in [-1, 1], got [{low:.3g}, {high:.3g}]"
        )


def _check_masks(masks: object, contract: ScriptedCard, n: int) -> torch.Tensor:
    """The segmenter's output as [n, R, R]."""
    r = contract.resolution
    if not isinstance(masks, torch.Tensor):
        raise ContractError("the segmenter's forward(images) must return a tensor")
    if tuple(masks.shape) == (n, 1, r, r):
        masks = masks[:, 0]
    if tuple(masks.shape) != (n, r, r):
        raise ContractError(
            f"the segmenter must return masks [{n}, {r}, {r}] or [{n}, 1, {r}, {r}], "
            f"got {list(masks.shape)}"
        )
    return masks.float()


def _script_from_bytes(content: bytes, what: str, device: str) -> torch.jit.ScriptModule:
    try:
        module = torch.jit.load(io.BytesIO(content), map_location=device)
    except RuntimeError as exc:
        raise ContractError(f"the {what} is not a TorchScript module ({exc})") from None
    return module.eval()


def _probe(loaded: ScriptedGenerator) -> None:
    """Run each module once on a small batch; a ContractError says what broke the contract."""
    contract = loaded.contract
    z = torch.from_numpy(np.random.default_rng(0).standard_normal((PROBE_ROWS, contract.z_dim)))
    c = torch.from_numpy(contract.encode(contract.findings[0], [0.0, 1.0], 50.0, "F"))
    with torch.no_grad():
        try:
            images = loaded.generator(z.float().to(loaded.device), c.to(loaded.device))
        except Exception as exc:  # whatever the user's code raises, said in its terms
            raise ContractError(
                f"the generator's forward(z [{PROBE_ROWS}, {contract.z_dim}], "
                f"c [{PROBE_ROWS}, {contract.condition_dim}]) failed: {exc}"
            ) from None
        _check_images(images, contract, PROBE_ROWS)
        if loaded.segmenter is not None:
            try:
                masks = loaded.segmenter(images)
            except Exception as exc:
                raise ContractError(f"the segmenter's forward(images) failed: {exc}") from None
            _check_masks(masks, contract, PROBE_ROWS)


def pack_scripted_generator(
    generator_path: Path, card: dict, out: Path, *, segmenter_path: Path | None = None
) -> str:
    """Check a TorchScript generator (and segmenter) against ``card`` and write ``out`` with
    its sidecar card; returns the file's sha256. Nothing is written when a check fails."""
    contract = validate_card(card)
    generator_bytes = generator_path.read_bytes()
    segmenter_bytes = segmenter_path.read_bytes() if segmenter_path else None
    _probe(
        ScriptedGenerator(
            _script_from_bytes(generator_bytes, "generator", "cpu"),
            segmenter_bytes and _script_from_bytes(segmenter_bytes, "segmenter", "cpu"),
            contract,
            card,
            sha256="",
        )
    )
    sidecar = {**card, "architecture": ARCHITECTURE, "masks": segmenter_bytes is not None}
    payload = {
        "format": FORMAT,
        "model_card": sidecar,
        "generator": torch.frombuffer(bytearray(generator_bytes), dtype=torch.uint8),
    }
    if segmenter_bytes is not None:
        payload["segmenter"] = torch.frombuffer(bytearray(segmenter_bytes), dtype=torch.uint8)
    return write_with_card(payload, out, sidecar)


def load_scripted_generator(path: Path, device: str = "cpu") -> ScriptedGenerator:
    """A packed generator on ``device``, checked again by running it once."""
    payload, digest = read_checked(path, FORMAT)
    card = payload["model_card"]
    segmenter = payload.get("segmenter")
    loaded = ScriptedGenerator(
        generator=_script_from_bytes(payload["generator"].numpy().tobytes(), "generator", device),
        segmenter=None
        if segmenter is None
        else _script_from_bytes(segmenter.numpy().tobytes(), "segmenter", device),
        contract=validate_card(card),
        card=card,
        sha256=digest,
        device=str(device),
    )
    _probe(loaded)
    return loaded
