"""A cohort on disk: ``cohort.npz`` (every array, exact), ``manifest.json`` (metadata and one
label row per image), ``images/*.png`` (16-bit) and ``masks/*.png`` for people and other tools,
and ``preview.png`` (a few tracks, lesion outlines in red)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from genworker.cohorts import Cohort
from genworker.conditions import SEXES

FORMAT = "gantry-cohort/1"
ARRAYS = ("images", "masks", "finding", "severity", "age", "sex", "track", "held_out")


def _counts(cohort: Cohort) -> dict:
    held = cohort.held_out
    return {
        "images": len(cohort.images),
        "tracks": len(np.unique(cohort.track)),
        "train_images": int((~held).sum()),
        "held_out_images": int(held.sum()),
        "train_tracks": len(np.unique(cohort.track[~held])),
        "held_out_tracks": len(np.unique(cohort.track[held])),
        "images_per_finding": {
            name: int((cohort.finding == i).sum()) for i, name in enumerate(cohort.findings)
        },
    }


def _rows(cohort: Cohort) -> list[dict]:
    return [
        {
            "image": f"images/{i:05d}.png",
            "mask": f"masks/{i:05d}.png",
            "finding": cohort.findings[cohort.finding[i]],
            "severity": round(float(cohort.severity[i]), 6),
            "age": round(float(cohort.age[i]), 3),
            "sex": SEXES[int(cohort.sex[i])],
            "track": int(cohort.track[i]),
            "held_out": bool(cohort.held_out[i]),
        }
        for i in range(len(cohort.images))
    ]


def write_cohort(cohort: Cohort, folder: str | Path) -> Path:
    """Write ``cohort`` under ``folder`` (created); returns the manifest's path."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    np.savez_compressed(folder / "cohort.npz", **{name: getattr(cohort, name) for name in ARRAYS})
    for i, (image, mask) in enumerate(zip(cohort.images, cohort.masks, strict=True)):
        pixels = np.round(np.clip(image, 0, 1) * 65535).astype(np.uint16)
        Image.fromarray(pixels).save(folder / "images" / f"{i:05d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / f"{i:05d}.png")
    write_preview(cohort, folder / "preview.png")
    manifest = {
        "format": FORMAT,
        "name": cohort.name,
        "findings": list(cohort.findings),
        "modality": cohort.modality,
        "seed": cohort.seed,
        "resolution": cohort.resolution,
        "counts": _counts(cohort),
        "provenance": cohort.provenance,
        "rows": _rows(cohort),
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1))
    return path


def read_cohort(folder: str | Path) -> Cohort:
    """The cohort written by :func:`write_cohort` (arrays from ``cohort.npz``, exact)."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{folder} does not hold a {FORMAT} cohort")
    with np.load(folder / "cohort.npz", allow_pickle=False) as arrays:
        data = {name: arrays[name] for name in ARRAYS}
    return Cohort(
        name=manifest["name"],
        findings=tuple(manifest["findings"]),
        seed=manifest["seed"],
        modality=manifest["modality"],
        provenance=manifest["provenance"],
        **data,
    )


def preview(cohort: Cohort, *, tracks: int = 6, per_track: int = 5) -> np.ndarray:
    """uint8 RGB grid [rows, cols, 3]: one row per track (the first ``tracks`` of each finding
    in turn), up to ``per_track`` images along it, lesion outlines in red."""
    firsts = [np.unique(cohort.track[cohort.finding == f]) for f in range(len(cohort.findings))]
    chosen = [t for group in zip(*firsts, strict=False) for t in group][:tracks]
    if len(chosen) < tracks:
        extra = [t for t in np.unique(cohort.track) if t not in chosen]
        chosen += extra[: tracks - len(chosen)]
    size = cohort.resolution
    grid = np.zeros((len(chosen) * size, per_track * size, 3), np.uint8)
    for row, track in enumerate(chosen):
        members = np.flatnonzero(cohort.track == track)
        picks = members[np.linspace(0, len(members) - 1, min(per_track, len(members))).astype(int)]
        for col, i in enumerate(picks):
            grey = np.round(np.clip(cohort.images[i], 0, 1) * 255).astype(np.uint8)
            tile = np.repeat(grey[:, :, None], 3, axis=2)
            outline = cohort.masks[i] & ~ndimage.binary_erosion(cohort.masks[i])
            tile[outline] = (255, 0, 0)
            grid[row * size : (row + 1) * size, col * size : (col + 1) * size] = tile
    return grid


def write_preview(cohort: Cohort, path: str | Path, *, tracks: int = 6) -> None:
    Image.fromarray(preview(cohort, tracks=tracks)).save(path)
