"""Cohorts from users' own images: DICOM files, NIfTI volumes, MedMNIST ``.npz`` files.

Every importer returns :class:`Imported`: the cohort plus ``skipped``, a list of
``(file name, reason)`` for each file (or labels row) left out. A bad file never
stops an import; only an import with nothing usable raises :class:`NothingImported`.

Labels CSV (DICOM: required; NIfTI: optional) has a header row and the columns
``file`` and ``finding``, and optionally ``severity`` (in [0, 1]; default 0 for
"normal", 1 otherwise), ``age`` (years), ``sex`` (F/M or 0/1) and ``track``
(subject id: images of one subject are held out together; default: one track
per file). Missing age or sex is filled with 50 years / F, as a neutral value for
the generators' conditions, and the provenance says how many rows were filled.
"""

from __future__ import annotations

import csv
import math
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
import pydicom
import pydicom.pixels

from genworker.cohorts import Cohort
from genworker.cohorts.anatomy import resize
from genworker.cohorts.tracks import HELD_OUT_FRACTION, split_by_track
from genworker.conditions import AGE_CENTRE, SEXES

NEUTRAL_AGE = AGE_CENTRE
NEUTRAL_SEX = 0


class Imported(NamedTuple):
    cohort: Cohort
    skipped: list[tuple[str, str]]  # (file name, reason)


class NothingImported(ValueError):
    """No file could be imported; ``skipped`` says why for each."""

    def __init__(self, skipped: list[tuple[str, str]]) -> None:
        self.skipped = skipped
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped) or "no files"
        super().__init__(f"nothing could be imported ({reasons})")


class BadFile(Exception):
    """A file or labels row that cannot be used; the message is the reason."""


@dataclass
class LabelRow:
    file: str
    finding: str
    severity: float
    age: float | None
    sex: int | None
    track: str


def _parse_severity(text: str, finding: str) -> float:
    if not text:
        return 0.0 if finding == "normal" else 1.0
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"severity {value} is outside [0, 1]")
    if finding == "normal" and value != 0.0:
        raise ValueError("a normal image must have severity 0")
    return value


def _parse_sex(text: str) -> int | None:
    if not text:
        return None
    if text.upper() in SEXES:
        return SEXES.index(text.upper())
    if text in ("0", "1"):
        return int(text)
    raise ValueError(f"sex {text!r} is not F, M, 0 or 1")


def _parse_row(row: dict[str, str]) -> LabelRow:
    """One labels row; raises ValueError naming the bad value."""
    file = (row.get("file") or "").strip()
    finding = (row.get("finding") or "").strip()
    if not file or not finding:
        raise ValueError("the row needs a file and a finding")
    age_text = (row.get("age") or "").strip()
    age = float(age_text) if age_text else None
    if age is not None and not (0 <= age <= 130):
        raise ValueError(f"age {age} is not a plausible age in years")
    return LabelRow(
        file=file,
        finding=finding,
        severity=_parse_severity((row.get("severity") or "").strip(), finding),
        age=age,
        sex=_parse_sex((row.get("sex") or "").strip()),
        track=(row.get("track") or "").strip() or f"file:{file}",
    )


def read_labels(path: str | Path) -> tuple[list[LabelRow], list[tuple[str, str]]]:
    """Rows of a labels CSV; rows with bad values are skipped with their reason.

    Raises ValueError if the CSV lacks the ``file`` or ``finding`` column.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = {c.strip() for c in reader.fieldnames or []}
        if not {"file", "finding"} <= columns:
            raise ValueError(f"{path.name} needs the columns 'file' and 'finding'")
        rows, skipped = [], []
        for number, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "") for k, v in raw.items()}
            try:
                rows.append(_parse_row(row))
            except ValueError as error:
                skipped.append((row.get("file") or f"{path.name} line {number}", str(error)))
    return rows, skipped


def _findings(rows: Sequence[LabelRow], findings: Sequence[str] | None) -> tuple[str, ...]:
    if findings is not None:
        return tuple(findings)
    names = sorted({row.finding for row in rows})
    return tuple(["normal"] * ("normal" in names) + [n for n in names if n != "normal"])


def _to_square(image: np.ndarray, resolution: int, pixel_aspect: float = 1.0) -> np.ndarray:
    """Pad [H, W] to a square (black borders) after correcting the pixel aspect, and resize.

    ``pixel_aspect`` is row spacing / column spacing.
    """
    if not math.isclose(pixel_aspect, 1.0, rel_tol=0.02):
        rows = max(1, round(image.shape[0] * pixel_aspect))
        image = resize(image, (rows, image.shape[1]))
    side = max(image.shape)
    square = np.zeros((side, side), np.float32)
    top, left = (side - image.shape[0]) // 2, (side - image.shape[1]) // 2
    square[top : top + image.shape[0], left : left + image.shape[1]] = image
    return np.clip(resize(square, resolution), 0, 1)


def _window(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if not high > low:
        raise BadFile("the image is constant")
    return np.clip((values - low) / (high - low), 0, 1).astype(np.float32)


def _dicom_pixels(ds: pydicom.Dataset) -> np.ndarray:
    """Display-normalised [H, W] in [0, 1]: rescale, VOI (window or LUT), MONOCHROME1 flipped.

    Without a VOI the 0.5-99.5 percentile range is used.
    """
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise BadFile(f"multi-frame image ({frames} frames); give one frame per file")
    try:
        pixels = ds.pixel_array
    except Exception as error:  # decoders raise many types for damaged data; report any
        raise BadFile(f"pixel data cannot be decoded ({error})") from error
    if pixels.ndim == 3:  # colour: luminance
        pixels = pixels[..., :3] @ np.array([0.299, 0.587, 0.114])
    values = pydicom.pixels.apply_rescale(pixels.astype(np.float64), ds)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        values = pydicom.pixels.apply_voi_lut(values, ds)
        image = _window(values, float(values.min()), float(values.max()))
    else:
        low, high = np.percentile(values, [0.5, 99.5])
        image = _window(values, float(low), float(high))
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        image = 1.0 - image
    return image


def read_dicom_image(path: Path, resolution: int) -> tuple[np.ndarray, str]:
    """(image [R, R] in [0, 1], modality) from one DICOM file; raises BadFile with the reason."""
    try:
        ds = pydicom.dcmread(path)
    except (pydicom.errors.InvalidDicomError, OSError, EOFError, ValueError) as error:
        raise BadFile(f"not a readable DICOM file ({error})") from error
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise BadFile("the DICOM file has no pixel data")
    image = _dicom_pixels(ds)
    spacing = ds.get("PixelSpacing")
    aspect = float(spacing[0]) / float(spacing[1]) if spacing and float(spacing[1]) > 0 else 1.0
    return _to_square(image, resolution, aspect), str(ds.get("Modality", "OT") or "OT")


def _provenance(source: str, rows: Sequence[LabelRow], **extra: object) -> dict:
    return {
        "source": source,
        "licence": "supplied by the user; not checked by Gantry",
        "labels_filled": {
            "age": sum(row.age is None for row in rows),
            "sex": sum(row.sex is None for row in rows),
            "values": {"age": NEUTRAL_AGE, "sex": SEXES[NEUTRAL_SEX]},
        },
        **extra,
    }


def _cohort(
    name: str,
    findings: tuple[str, ...],
    images: list[np.ndarray],
    rows: Sequence[LabelRow],
    *,
    seed: int,
    modality: str,
    provenance: dict,
    held_out: np.ndarray | None = None,
) -> Cohort:
    """Stack imported images; without ``held_out``, whole tracks are held out at random."""
    tracks = {t: i for i, t in enumerate(dict.fromkeys(row.track for row in rows))}
    track = np.array([tracks[row.track] for row in rows], dtype=np.int64)
    finding = np.array([findings.index(row.finding) for row in rows], dtype=np.int64)
    return Cohort(
        name=name,
        findings=findings,
        images=np.stack(images).astype(np.float32),
        masks=np.zeros((len(images), *images[0].shape), bool),
        finding=finding,
        severity=np.array([row.severity for row in rows], dtype=np.float32),
        age=np.array([NEUTRAL_AGE if r.age is None else r.age for r in rows], np.float32),
        sex=np.array([NEUTRAL_SEX if r.sex is None else r.sex for r in rows], np.int8),
        track=track,
        held_out=(
            split_by_track(track, finding, fraction=HELD_OUT_FRACTION, seed=seed)
            if held_out is None
            else held_out
        ),
        seed=seed,
        modality=modality,
        provenance=provenance,
    )


def _usable_rows(
    rows: list[LabelRow], folder: Path, findings: tuple[str, ...], skipped: list
) -> list[LabelRow]:
    """Rows whose file exists under ``folder`` and whose finding is known."""
    usable = []
    for row in rows:
        if row.finding not in findings:
            skipped.append((row.file, f"finding {row.finding!r} is not one of {list(findings)}"))
        elif not (folder / row.file).is_file():
            skipped.append((row.file, "listed in the labels CSV but not found"))
        else:
            usable.append(row)
    return usable


def _unlisted(folder: Path, rows: Sequence[LabelRow], patterns: Sequence[str]) -> list:
    listed = {(folder / row.file).resolve() for row in rows}
    files = sorted({p for pattern in patterns for p in folder.rglob(pattern) if p.is_file()})
    return [
        (str(p.relative_to(folder)), "not listed in the labels CSV")
        for p in files
        if p.resolve() not in listed
    ]


def import_dicom(
    folder: str | Path,
    labels_csv: str | Path,
    *,
    resolution: int,
    name: str = "imported-dicom",
    findings: Sequence[str] | None = None,
    seed: int = 0,
) -> Imported:
    """One 2D image per DICOM file listed in ``labels_csv`` (paths relative to ``folder``).

    Pixel data goes through the modality rescale and the VOI window or LUT (the
    0.5-99.5 percentile range where there is none), MONOCHROME1 is inverted, the
    image is made square (black padding) and resampled to ``resolution``.
    Files of the folder that the CSV does not list are reported as skipped.
    """
    folder = Path(folder)
    rows, skipped = read_labels(labels_csv)
    skipped += _unlisted(folder, rows, ["*.dcm", "*.DCM", "*.dicom"])
    chosen = _findings(rows, findings)
    images, kept, modalities = [], [], []
    for row in _usable_rows(rows, folder, chosen, skipped):
        try:
            image, modality = read_dicom_image(folder / row.file, resolution)
        except BadFile as error:
            skipped.append((row.file, str(error)))
            continue
        images.append(image)
        kept.append(row)
        modalities.append(modality)
    if not images:
        raise NothingImported(skipped)
    modality = max(set(modalities), key=modalities.count)
    provenance = _provenance(f"DICOM files in {folder.name}", kept, labels=Path(labels_csv).name)
    cohort = _cohort(
        name, chosen, images, kept, seed=seed, modality=modality, provenance=provenance
    )
    return Imported(cohort, skipped)


def _nifti_volume(path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    """RAS-oriented 3D array and its in-plane voxel size (mm); raises BadFile."""
    try:
        image = nib.as_closest_canonical(nib.load(path))
        volume = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as error:  # nibabel and gzip raise many types for damaged files
        raise BadFile(f"not a readable NIfTI file ({error})") from error
    if volume.ndim == 4 and volume.shape[3] == 1:
        volume = volume[..., 0]
    if volume.ndim != 3:
        raise BadFile(f"expected one 3D volume, found shape {volume.shape}")
    if not np.isfinite(volume).all():
        raise BadFile("the volume holds NaN or infinite values")
    zooms = image.header.get_zooms()
    return volume, (float(zooms[0]), float(zooms[1]))


def nifti_slices(path: Path, *, resolution: int, n_slices: int) -> list[np.ndarray]:
    """``n_slices`` axial slices [R, R] in [0, 1], evenly spaced over the central 80% of the
    volume's foreground, displayed radiologically (anterior up, patient right on the left)."""
    volume, (x_mm, y_mm) = _nifti_volume(path)
    low, high = np.percentile(volume, [0.5, 99.5])
    foreground = volume > low + 0.05 * (high - low)
    if not foreground.any():
        raise BadFile("the volume is empty")
    inside = foreground.any(axis=(0, 1))
    first, last = np.flatnonzero(inside)[[0, -1]]
    margin = 0.1 * (last - first)
    positions = np.linspace(first + margin, last - margin, n_slices + 2)[1:-1]
    normalised = _window(volume, float(low), float(high))
    return [
        _to_square(normalised[:, :, round(k)].T[::-1, ::-1], resolution, y_mm / x_mm)
        for k in positions
    ]


def import_nifti(
    paths: Sequence[str | Path],
    *,
    resolution: int,
    labels_csv: str | Path | None = None,
    slices_per_volume: int = 8,
    name: str = "imported-nifti",
    modality: str = "MR",
    default_finding: str = "normal",
    findings: Sequence[str] | None = None,
    seed: int = 0,
) -> Imported:
    """Axial slices of NIfTI volumes (``.nii``/``.nii.gz`` files, or folders of them).

    Each volume is one subject (track) unless the CSV says otherwise; without a
    CSV every slice gets ``default_finding`` with severity 0. With a CSV, its
    ``file`` column names volumes relative to the folder of the first path (or
    that path itself if a folder); volumes not listed are skipped.
    """
    files = _nifti_files([Path(p) for p in paths])
    root = Path(paths[0]) if Path(paths[0]).is_dir() else Path(paths[0]).parent
    skipped: list[tuple[str, str]] = []
    if labels_csv is None:
        rows = [
            LabelRow(_relative(f, root), default_finding, 0.0, None, None, str(f)) for f in files
        ]
    else:
        rows, skipped = read_labels(labels_csv)
        listed = {(root / row.file).resolve() for row in rows}
        skipped += [
            (_relative(f, root), "not listed in the labels CSV")
            for f in files
            if f.resolve() not in listed
        ]
    chosen = _findings(rows, findings)
    images, kept = [], []
    for row in _usable_rows(rows, root, chosen, skipped):
        try:
            slices = nifti_slices(
                root / row.file, resolution=resolution, n_slices=slices_per_volume
            )
        except BadFile as error:
            skipped.append((row.file, str(error)))
            continue
        images += slices
        kept += [row] * len(slices)
    if not images:
        raise NothingImported(skipped)
    provenance = _provenance("NIfTI volumes", kept, slices_per_volume=slices_per_volume)
    cohort = _cohort(
        name, chosen, images, kept, seed=seed, modality=modality, provenance=provenance
    )
    return Imported(cohort, skipped)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def _nifti_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.name.endswith((".nii", ".nii.gz")))
        else:
            files.append(path)
    return files


MEDMNIST_SPLITS = ("train", "val", "test")


def medmnist_arrays(path: Path, n_labels: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (images uint8 [N, H, W] or [N, H, W, 3], labels int [N])} of one MedMNIST file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            splits = {
                split: (data[f"{split}_images"], data[f"{split}_labels"])
                for split in MEDMNIST_SPLITS
                if f"{split}_images" in data.files and f"{split}_labels" in data.files
            }
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise BadFile(f"not a readable .npz file ({error})") from error
    if not splits:
        raise BadFile("no '<split>_images' with '<split>_labels' arrays (train, val, test)")
    out = {}
    for split, (images, labels) in splits.items():
        if labels.ndim == 2 and labels.shape[1] != 1:
            raise BadFile(f"multi-label file ({labels.shape[1]} labels per image) not supported")
        labels = labels.reshape(-1).astype(np.int64)
        if images.ndim not in (3, 4) or len(images) != len(labels):
            raise BadFile(f"{split}_images has shape {images.shape}, labels {len(labels)}")
        if labels.size and (labels.min() < 0 or labels.max() >= n_labels):
            raise BadFile(f"label {labels.max()} has no name ({n_labels} label names given)")
        out[split] = (images, labels)
    return out


def _medmnist_image(image: np.ndarray, resolution: int) -> np.ndarray:
    grey = image[..., :3] @ np.array([0.299, 0.587, 0.114]) if image.ndim == 3 else image
    return np.clip(resize(grey.astype(np.float32) / 255.0, resolution), 0, 1)


def import_medmnist(
    paths: Sequence[str | Path],
    *,
    label_names: Sequence[str],
    resolution: int,
    name: str = "imported-medmnist",
    modality: str = "OT",
) -> Imported:
    """MedMNIST ``.npz`` files as published (2D, one label per image, e.g. pneumoniamnist).

    ``label_names[k]`` names label value k and becomes a finding; severity is 0
    for "normal" and 1 for any other finding. The published ``test`` split is
    held out (whole images at random where no file has one); train and val are
    training data. MedMNIST has no subject ids, age
    or sex: each image is its own track and age/sex take the neutral values.
    """
    findings = tuple(label_names)
    images, rows, held_out, skipped = [], [], [], []
    for path in map(Path, paths):
        try:
            splits = medmnist_arrays(path, len(findings))
        except BadFile as error:
            skipped.append((path.name, str(error)))
            continue
        for split, (split_images, labels) in splits.items():
            for i, (image, label) in enumerate(zip(split_images, labels, strict=True)):
                finding = findings[label]
                severity = 0.0 if finding == "normal" else 1.0
                track = f"{path.name}:{split}:{i}"
                rows.append(LabelRow(path.name, finding, severity, None, None, track))
                images.append(_medmnist_image(image, resolution))
                held_out.append(split == "test")
    if not images:
        raise NothingImported(skipped)
    provenance = _provenance("MedMNIST files " + ", ".join(sorted({r.file for r in rows})), rows)
    cohort = _cohort(
        name,
        findings,
        images,
        rows,
        seed=0,
        modality=modality,
        provenance=provenance,
        held_out=np.array(held_out, dtype=bool) if any(held_out) else None,
    )
    return Imported(cohort, skipped)
