"""Importers: users' DICOM, NIfTI and MedMNIST files become cohorts; bad files are skipped
and reported by name."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from genworker.cohorts.cli import main
from genworker.cohorts.importers import (
    NothingImported,
    import_dicom,
    import_medmnist,
    import_nifti,
)
from genworker.cohorts.store import read_cohort

COLUMNS = ["file", "finding", "severity", "age", "sex", "track"]


def write_dicom(path: Path, stored: np.ndarray | None, **tags) -> None:
    """A single-frame 16-bit DICOM file of stored pixel values ``stored`` (None: no pixels)."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    if stored is not None:
        ds.Rows, ds.Columns = stored.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation = 0
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = stored.astype(np.uint16).tobytes()
    for name, value in tags.items():
        setattr(ds, name, value)
    ds.save_as(path, enforce_file_format=True)


def write_labels(path: Path, rows: list[list]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def halves(shape=(32, 32)) -> np.ndarray:
    """Stored values: left half -1000 HU, right half +1000 HU (after the -1024 intercept)."""
    stored = np.full(shape, 24, np.uint16)
    stored[:, shape[1] // 2 :] = 2024
    return stored


@pytest.fixture
def dicom_folder(tmp_path) -> tuple[Path, Path]:
    folder = tmp_path / "dicom"
    folder.mkdir()
    write_dicom(folder / "a.dcm", halves(), WindowCenter=0, WindowWidth=800)
    write_dicom(folder / "b.dcm", halves(), WindowCenter=0, WindowWidth=800)
    write_dicom(folder / "c.dcm", halves())
    good = (folder / "a.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(good[: len(good) - 700])
    (folder / "notes.dcm").write_text("this is a text file, not DICOM\n" * 4)
    write_dicom(folder / "empty.dcm", None)
    write_dicom(folder / "unlisted.dcm", halves())
    labels = write_labels(
        tmp_path / "labels.csv",
        [
            ["a.dcm", "normal", "", "61", "F", "p1"],
            ["b.dcm", "nodule", "0.4", "61", "F", "p1"],
            ["c.dcm", "nodule", "0.7", "", "M", "p2"],
            ["truncated.dcm", "nodule", "0.5", "50", "M", "p3"],
            ["notes.dcm", "normal", "", "40", "F", "p4"],
            ["empty.dcm", "normal", "", "40", "F", "p5"],
            ["missing.dcm", "normal", "", "40", "F", "p6"],
            ["a.dcm", "nodule", "high", "40", "F", "p7"],
        ],
    )
    return folder, labels


def test_dicom_import_skips_bad_files_naming_each(dicom_folder):
    folder, labels = dicom_folder
    cohort, skipped = import_dicom(folder, labels, resolution=16, seed=1)
    reasons = dict(skipped)
    assert set(reasons) == {
        "truncated.dcm",
        "notes.dcm",
        "empty.dcm",
        "missing.dcm",
        "unlisted.dcm",
        "a.dcm",
    }
    assert "decoded" in reasons["truncated.dcm"]
    assert "not a readable DICOM file" in reasons["notes.dcm"]
    assert "no pixel data" in reasons["empty.dcm"]
    assert "not found" in reasons["missing.dcm"]
    assert "not listed" in reasons["unlisted.dcm"]
    assert "could not convert" in reasons["a.dcm"]  # the row with severity "high"
    assert cohort.images.shape == (3, 16, 16)
    assert cohort.findings == ("normal", "nodule")
    np.testing.assert_array_equal(cohort.finding, [0, 1, 1])
    np.testing.assert_allclose(cohort.severity, [0.0, 0.4, 0.7])
    np.testing.assert_allclose(cohort.age, [61, 61, 50])  # missing age -> neutral 50
    np.testing.assert_array_equal(cohort.sex, [0, 0, 1])
    assert cohort.track[0] == cohort.track[1] != cohort.track[2]
    assert cohort.modality == "CT"
    assert cohort.provenance["labels_filled"]["age"] == 1


def test_dicom_pixels_are_rescaled_windowed_and_resampled(dicom_folder):
    folder, labels = dicom_folder
    cohort, _ = import_dicom(folder, labels, resolution=16)
    windowed = cohort.images[0]  # -1000 HU | +1000 HU through a 0 +- 400 HU window
    assert windowed[:, :7].max() < 0.01
    assert windowed[:, 9:].min() > 0.99
    unwindowed = cohort.images[2]  # no VOI: the percentile range
    assert unwindowed[:, :7].max() < 0.01
    assert unwindowed[:, 9:].min() > 0.99


def test_dicom_monochrome1_is_inverted_and_non_square_is_padded(tmp_path):
    write_dicom(tmp_path / "wide.dcm", halves((16, 32)), PhotometricInterpretation="MONOCHROME1")
    labels = write_labels(tmp_path / "labels.csv", [["wide.dcm", "normal", "", "", "", ""]])
    cohort, skipped = import_dicom(tmp_path, labels, resolution=16)
    assert skipped == []
    image = cohort.images[0]
    # 16 x 32 padded to 32 x 32: black bands above and below
    assert image[:3].max() < 0.01
    assert image[-3:].max() < 0.01
    # MONOCHROME1: the dark stored left half displays bright
    assert image[6:10, :6].min() > 0.99
    assert image[6:10, 10:].max() < 0.01


def test_dicom_import_with_nothing_usable_says_why(tmp_path):
    (tmp_path / "notes.dcm").write_text("not DICOM")
    labels = write_labels(tmp_path / "labels.csv", [["notes.dcm", "normal", "", "", "", ""]])
    with pytest.raises(NothingImported, match=r"notes\.dcm"):
        import_dicom(tmp_path, labels, resolution=16)


def nifti_volume(path: Path, shape=(20, 24, 16)) -> None:
    """A box of tissue with a bright blob in the patient's right, anterior part (RAS affine)."""
    volume = np.zeros(shape, np.float32)
    volume[2:-2, 2:-2, 2:-2] = 100
    volume[14:18, 16:21, 2:-2] = 400  # x high = patient right, y high = anterior
    nib.save(nib.Nifti1Image(volume, np.eye(4)), path)


def test_nifti_slices_are_axial_and_radiological(tmp_path):
    nifti_volume(tmp_path / "head.nii.gz")
    cohort, skipped = import_nifti([tmp_path], resolution=24, slices_per_volume=3)
    assert skipped == []
    assert cohort.images.shape == (3, 24, 24)
    assert (cohort.finding == 0).all()
    assert cohort.findings == ("normal",)
    assert len(np.unique(cohort.track)) == 1  # one volume, one subject
    bright = cohort.images[1] > 0.9
    rows, cols = np.nonzero(bright)
    assert rows.mean() < 12  # anterior is up
    assert cols.mean() < 12  # the patient's right is on the image's left


def test_nifti_import_skips_bad_volumes_naming_each(tmp_path):
    nifti_volume(tmp_path / "good.nii.gz")
    nifti_volume(tmp_path / "unlabelled.nii.gz")
    (tmp_path / "corrupt.nii.gz").write_bytes(b"\x1f\x8b" + bytes(range(200)))
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8, 3), np.float32), np.eye(4)), tmp_path / "4d.nii")
    labels = write_labels(
        tmp_path / "labels.csv",
        [
            ["good.nii.gz", "glioma", "0.3", "45", "M", ""],
            ["corrupt.nii.gz", "glioma", "0.3", "45", "M", ""],
            ["4d.nii", "normal", "", "45", "M", ""],
            ["gone.nii.gz", "normal", "", "45", "M", ""],
        ],
    )
    cohort, skipped = import_nifti(
        [tmp_path], resolution=16, labels_csv=labels, slices_per_volume=2
    )
    reasons = dict(skipped)
    assert set(reasons) == {"unlabelled.nii.gz", "corrupt.nii.gz", "4d.nii", "gone.nii.gz"}
    assert "not a readable NIfTI file" in reasons["corrupt.nii.gz"]
    assert "3D" in reasons["4d.nii"]
    assert "not found" in reasons["gone.nii.gz"]
    assert cohort.images.shape == (2, 16, 16)
    np.testing.assert_allclose(cohort.severity, [0.3, 0.3])
    assert cohort.findings == ("normal", "glioma")


def write_medmnist(path: Path, sizes=(("train", 6), ("val", 2), ("test", 3)), labels=2) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in sizes:
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, labels, (n, 1))
    np.savez_compressed(path, **arrays)


def test_medmnist_import_uses_the_published_test_split(tmp_path):
    write_medmnist(tmp_path / "pneumoniamnist.npz")
    cohort, skipped = import_medmnist(
        [tmp_path / "pneumoniamnist.npz"], label_names=["normal", "pneumonia"], resolution=28
    )
    assert skipped == []
    assert cohort.images.shape == (11, 28, 28)
    assert cohort.held_out.sum() == 3
    assert cohort.held_out[-3:].all()
    with np.load(tmp_path / "pneumoniamnist.npz") as data:
        labels = np.concatenate([data[f"{s}_labels"][:, 0] for s in ("train", "val", "test")])
        np.testing.assert_allclose(cohort.images[0], data["train_images"][0] / 255, atol=1e-6)
    np.testing.assert_array_equal(cohort.finding, labels)
    np.testing.assert_array_equal(cohort.severity, labels.astype(np.float32))
    assert len(np.unique(cohort.track)) == 11


def test_medmnist_import_skips_bad_files_naming_each(tmp_path):
    write_medmnist(tmp_path / "good.npz")
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04" + bytes(300))
    write_medmnist(tmp_path / "three_labels.npz", labels=3)
    np.savez(
        tmp_path / "multilabel.npz",
        train_images=np.zeros((2, 28, 28), np.uint8),
        train_labels=np.zeros((2, 14), np.int64),
    )
    paths = [
        tmp_path / n for n in ("good.npz", "corrupt.npz", "three_labels.npz", "multilabel.npz")
    ]
    cohort, skipped = import_medmnist(paths, label_names=["normal", "pneumonia"], resolution=16)
    reasons = dict(skipped)
    assert set(reasons) == {"corrupt.npz", "three_labels.npz", "multilabel.npz"}
    assert "not a readable .npz file" in reasons["corrupt.npz"]
    assert "no name" in reasons["three_labels.npz"]
    assert "multi-label" in reasons["multilabel.npz"]
    assert cohort.images.shape == (11, 16, 16)


def test_cli_import_reports_skipped_files_and_writes_the_cohort(tmp_path, capsys):
    write_medmnist(tmp_path / "good.npz")
    (tmp_path / "bad.npz").write_text("not a zip")
    out = tmp_path / "out"
    args = ["import-medmnist", str(tmp_path / "good.npz"), str(tmp_path / "bad.npz")]
    assert main([*args, "--labels", "normal,pneumonia", "--out", str(out)]) == 0
    assert "skipped bad.npz" in capsys.readouterr().err
    assert read_cohort(out).images.shape == (11, 128, 128)
    assert (
        main(["import-medmnist", str(tmp_path / "bad.npz"), "--labels", "a", "--out", str(out)])
        == 1
    )
