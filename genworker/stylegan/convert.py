"""From an NVIDIA StyleGAN2-ADA / StyleGAN3 network pickle to a Gantry checkpoint.

``import_network_pickle`` reads the snapshot as data (:mod:`genworker.stylegan.unpickle`),
describes its ``G_ema`` (:mod:`genworker.stylegan.spec`), builds Gantry's own networks
from the description, loads the weights and writes the checkpoint with its model card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genworker.checkpoint import sha256_file
from genworker.stylegan.model import (
    NORMAL_CLASS,
    ImportedStyleGAN,
    StyleGANGenerator,
    load_imported,
    save_imported,
)
from genworker.stylegan.spec import describe, plain
from genworker.stylegan.unpickle import PersistentObject, read_network_pickle


@dataclass(frozen=True)
class CardFields:
    """What the user says of an imported model (the pickle cannot)."""

    modality: str
    findings: Sequence[str] = ()  # one name per class, in class order; "normal" for healthy
    licence: str = ""
    citation: str = ""
    truncation: float = 1.0  # the default truncation of cases made from the model
    pixel_spacing_mm: float | None = None
    # Whether the findings of an unconditional model name the directions to be taught from
    # labelled samples (the site's upload page, one field for both kinds of model) instead
    # of being refused as classes it does not have.
    teach_findings: bool = False


def family_of(g_ema: PersistentObject) -> str:
    """StyleGAN3 synthesis starts from Fourier features ("input"); StyleGAN2 from a
    learned constant in its first block."""
    return "stylegan3" if "input" in g_ema.child("synthesis").modules else "stylegan2"


def generator_from_pickle(g_ema: PersistentObject) -> tuple[StyleGANGenerator, dict]:
    """Gantry's networks holding ``g_ema``'s weights, and their descriptions."""
    if g_ema.class_name != "Generator":
        raise ValueError(f"G_ema is a {g_ema.class_name}, not a StyleGAN Generator")
    descriptions = {part: describe(g_ema.child(part)) for part in ("mapping", "synthesis")}
    generator = StyleGANGenerator(
        family_of(g_ema), descriptions["mapping"], descriptions["synthesis"]
    )
    tensors = {
        name: tensor.float()
        for name, tensor in g_ema.tensors().items()
        if name.startswith(("mapping.", "synthesis."))
    }
    missing, unexpected = generator.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"the pickle's G_ema does not fit the network it describes: missing {missing}, "
            f"unexpected {unexpected}"
        )
    return generator.eval().requires_grad_(False), descriptions


def class_names(generator: StyleGANGenerator, findings: Sequence[str]) -> list[str]:
    if not generator.c_dim:
        if findings:
            raise ValueError(
                "the model is unconditional: it has no classes to name (--findings); "
                "its findings are taught as directions in w"
            )
        return []
    if not findings:
        return [f"class {k}" for k in range(generator.c_dim)]
    if len(findings) != generator.c_dim or len(set(findings)) != len(findings):
        raise ValueError(
            f"the model has {generator.c_dim} classes: --findings needs {generator.c_dim} "
            f"distinct names in class order, got {list(findings)}"
        )
    return list(findings)


def taught_findings(generator: StyleGANGenerator, fields: CardFields) -> list[str]:
    """The findings whose directions an unconditional model will be taught, where asked."""
    if generator.c_dim or not fields.teach_findings:
        return []
    findings = list(fields.findings)
    if len(set(findings)) != len(findings) or NORMAL_CLASS in findings:
        raise ValueError(
            f"the findings to teach must be distinct and not {NORMAL_CLASS!r}, got {findings}"
        )
    return findings


def class_directions(generator: StyleGANGenerator, classes: list[str]) -> dict[str, np.ndarray]:
    """Each disease class's mean w minus the "normal" class's: where severity 1 leads."""
    if NORMAL_CLASS not in classes:
        return {}
    means = generator.class_mean_w().cpu().numpy()
    normal = means[classes.index(NORMAL_CLASS)]
    return {
        name: (means[k] - normal).astype(np.float32)
        for k, name in enumerate(classes)
        if name != NORMAL_CLASS
    }


def import_network_pickle(
    pickle_path: str | Path, out: str | Path, fields: CardFields
) -> ImportedStyleGAN:
    """Convert ``pickle_path``'s ``G_ema`` into the Gantry checkpoint ``out`` (+ card)."""
    pickle_path, out = Path(pickle_path), Path(out)
    snapshot = read_network_pickle(pickle_path)
    g_ema = snapshot.get("G_ema")
    if not isinstance(g_ema, PersistentObject):
        raise ValueError(f"{pickle_path.name} holds no G_ema network (keys: {sorted(snapshot)})")
    generator, descriptions = generator_from_pickle(g_ema)
    taught = taught_findings(generator, fields)
    classes = class_names(generator, () if taught else fields.findings)
    directions = class_directions(generator, classes)
    synthesis = descriptions["synthesis"]["attributes"]
    card = {
        "name": out.stem,
        "architecture": f"{generator.family} (imported)",
        "modality": fields.modality,
        "resolution": int(synthesis["img_resolution"]),
        "channels": _channel_names(int(synthesis["img_channels"])),
        "z_dim": generator.z_dim,
        "w_dim": generator.w_dim,
        "classes": classes,
        "conditions": {"findings": sorted(directions) or taught, "classes": classes},
        "taught_findings": taught,
        "truncation_default": fields.truncation,
        "progression": _progression_note(generator, classes, directions),
        "masks": False,  # no segmentation network: cases carry no ground truth
        "training_set": _plain_or_text(snapshot.get("training_set_kwargs")),
        "licence": fields.licence,
        "citation": fields.citation,
        "provenance": {
            "source": "NVIDIA network pickle (G_ema), read as data and never executed",
            "file": pickle_path.name,
            "sha256": sha256_file(pickle_path),
            "generator_kwargs": _plain_or_text(g_ema.init_kwargs),
        },
        "weights": "G_ema, float32",
    }
    if fields.pixel_spacing_mm:
        card["pixel_spacing_mm"] = fields.pixel_spacing_mm
    save_imported(out, generator, descriptions, model_card=card, directions=directions)
    return load_imported(out)


def _channel_names(count: int) -> list[str]:
    if count == 1:
        return ["image"]
    if count == 3:
        return ["red", "green", "blue"]  # shown as their mean: cases are greyscale
    return [f"channel {i + 1}" for i in range(count)]


def _progression_note(generator: StyleGANGenerator, classes: list[str], directions: dict) -> str:
    if directions:
        return (
            f"z fixed, w walked from the {NORMAL_CLASS!r} class toward each disease class by "
            "the difference of their class means of w"
        )
    if generator.c_dim:
        return f"none yet: no class is named {NORMAL_CLASS!r} (--findings)"
    return "none yet: an unconditional model needs a direction taught from labelled samples"


def _plain_or_text(value: object) -> object:
    try:
        return plain(value)
    except ValueError:
        return repr(value)
