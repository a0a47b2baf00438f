"""Simulated cohorts: determinism, masks that follow severity, the split, storage, the CLI."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from PIL import Image

from genworker.cohorts import brain, chest, registry
from genworker.cohorts.cli import main
from genworker.cohorts.registry import build_cohort
from genworker.cohorts.store import read_cohort, write_cohort

RESOLUTION = 32
SUBJECTS = 6  # two tracks per finding (chest) / four glioma + two normal (brain)
TIMEPOINTS = 3


@pytest.fixture(scope="module")
def brain_cohort():
    return build_cohort(
        "brain-glioma", resolution=RESOLUTION, n_subjects=SUBJECTS, seed=3, timepoints=TIMEPOINTS
    )


@pytest.fixture(scope="module")
def chest_cohort():
    return build_cohort(
        "chest-xray", resolution=RESOLUTION, n_subjects=SUBJECTS, seed=3, timepoints=TIMEPOINTS
    )


@pytest.fixture(params=["brain", "chest"])
def cohort(request, brain_cohort, chest_cohort):
    return brain_cohort if request.param == "brain" else chest_cohort


def test_cohorts_carry_their_labels(brain_cohort, chest_cohort):
    assert brain_cohort.findings == ("normal", "glioma")
    assert brain_cohort.modality == "MR"
    assert chest_cohort.findings == ("normal", "nodule", "effusion")
    assert chest_cohort.modality == "DX"
    for cohort in (brain_cohort, chest_cohort):
        assert cohort.images.shape == (SUBJECTS * TIMEPOINTS, RESOLUTION, RESOLUTION)
        assert set(np.unique(cohort.finding)) == set(range(len(cohort.findings)))
        assert ((cohort.age >= 20) & (cohort.age <= 85)).all()
        assert set(np.unique(cohort.sex)) <= {0, 1}
        assert "licence" in cohort.provenance
        assert "severity" in cohort.provenance


def test_same_seed_gives_the_same_cohort_and_another_seed_does_not(brain_cohort):
    again = build_cohort(
        "brain-glioma", resolution=RESOLUTION, n_subjects=2, seed=3, timepoints=TIMEPOINTS
    )
    first_two = brain_cohort.subset(brain_cohort.track < 2)
    np.testing.assert_array_equal(again.images, first_two.images)
    np.testing.assert_array_equal(again.masks, first_two.masks)
    np.testing.assert_array_equal(again.severity, first_two.severity)
    other = build_cohort(
        "brain-glioma", resolution=RESOLUTION, n_subjects=2, seed=4, timepoints=TIMEPOINTS
    )
    assert not np.array_equal(other.images, again.images)


def test_a_cached_cohort_is_simulated_once_per_set_of_arguments(tmp_path, monkeypatch):
    simulated = []

    def counting_build(**kwargs):
        simulated.append(kwargs["seed"])
        return brain.build(**kwargs)

    monkeypatch.setitem(registry.BUILDERS, "brain-glioma", counting_build)
    kwargs = {"resolution": RESOLUTION, "n_subjects": 2, "timepoints": 2, "cache": tmp_path}
    first = build_cohort("brain-glioma", seed=3, **kwargs)
    again = build_cohort("brain-glioma", seed=3, **kwargs)
    build_cohort("brain-glioma", seed=4, **kwargs)
    assert simulated == [3, 4]
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.held_out, first.held_out)
    assert len(list(tmp_path.glob("brain-glioma-*/manifest.json"))) == 2


def test_chest_cohort_is_deterministic():
    kwargs = {"resolution": RESOLUTION, "n_subjects": 2, "seed": 9, "timepoints": 2}
    a, b = build_cohort("chest-xray", **kwargs), build_cohort("chest-xray", **kwargs)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)


def test_masks_follow_severity_along_each_track(cohort):
    for track in np.unique(cohort.track):
        rows = cohort.track == track
        severity = cohort.severity[rows]
        area = cohort.masks[rows].sum(axis=(1, 2))
        assert (np.diff(severity) >= 0).all()
        assert (np.diff(area) >= 0).all(), f"mask area shrinks along track {track}: {area}"
        if cohort.findings[cohort.finding[rows][0]] == "normal":
            assert (severity == 0).all()
            assert (area == 0).all()
        else:
            assert (severity > 0).all()
            assert severity.max() <= 1
            assert area[-1] > 0


def test_held_out_split_is_by_whole_tracks(cohort):
    held_tracks = set(cohort.track[cohort.held_out])
    train_tracks = set(cohort.track[~cohort.held_out])
    assert held_tracks
    assert train_tracks
    assert not held_tracks & train_tracks
    assert set(cohort.train().finding) == set(range(len(cohort.findings)))


def test_images_lie_in_unit_range_with_contrast(cohort):
    assert cohort.images.dtype == np.float32
    assert cohort.images.min() >= 0
    assert cohort.images.max() <= 1
    assert (cohort.images.std(axis=(1, 2)) > 0.1).all()


def test_glioma_lowers_t1_signal_inside_its_mask(brain_cohort):
    glioma = brain_cohort.subset(brain_cohort.masks.sum(axis=(1, 2)) > 4)
    for image, mask in zip(glioma.images, glioma.masks, strict=True):
        brain = image > 0.3  # tissue; the background is black
        assert image[mask].mean() < image[brain & ~mask].mean()


def test_brain_tumour_lies_inside_the_brain():
    track = brain.simulate_track(np.random.default_rng(0), 1, resolution=64, timepoints=2)
    inside = (track.masks & track.region).sum() / track.masks.sum()
    assert inside > 0.95


def test_nodule_lies_inside_the_projected_lungs():
    for subject in range(3):
        track = chest.simulate_track(
            np.random.default_rng([1, subject]), 1, resolution=64, timepoints=2
        )
        mask = track.masks[-1]
        assert mask.any()
        assert (mask & track.region).sum() / mask.sum() > 0.95


def test_effusion_sits_low_in_one_hemithorax_and_brightens_it(chest_cohort):
    effusion = chest_cohort.findings.index("effusion")
    for track in np.unique(chest_cohort.track[chest_cohort.finding == effusion]):
        rows = np.flatnonzero(chest_cohort.track == track)
        mask = chest_cohort.masks[rows[-1]]
        mask_rows, mask_cols = np.nonzero(mask)
        assert mask_rows.mean() > RESOLUTION / 2, "effusion must lie in the lower half"
        assert np.ptp(mask_cols) < RESOLUTION / 2, "effusion fills one side only"
        first, last = chest_cohort.images[rows[0]], chest_cohort.images[rows[-1]]
        assert last[mask].mean() > first[mask].mean() + 0.05


def test_templates_load_from_the_package_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the cohort tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    slab = brain.template_slab.__wrapped__(64)  # uncached: really loads the files
    assert slab.t1.shape == (len(brain.SLAB_MNI_Z_MM), 64, 64)
    assert slab.wm.max() > 0.9
    assert slab.gm.max() > 0.9


def test_unknown_cohort_names_are_refused():
    with pytest.raises(ValueError, match="known cohorts"):
        build_cohort("knee-mri", resolution=32, n_subjects=1, seed=0)


def test_store_round_trip(brain_cohort, tmp_path):
    manifest_path = write_cohort(brain_cohort, tmp_path / "cohort")
    back = read_cohort(tmp_path / "cohort")
    for name in ("images", "masks", "finding", "severity", "age", "sex", "track", "held_out"):
        np.testing.assert_array_equal(getattr(back, name), getattr(brain_cohort, name))
    assert (back.name, back.findings, back.seed, back.modality) == (
        brain_cohort.name,
        brain_cohort.findings,
        brain_cohort.seed,
        brain_cohort.modality,
    )
    assert back.provenance == brain_cohort.provenance
    manifest = json.loads(manifest_path.read_text())
    assert manifest["counts"]["images"] == len(brain_cohort.images)
    assert manifest["counts"]["held_out_tracks"] == len(
        np.unique(brain_cohort.track[brain_cohort.held_out])
    )
    row = manifest["rows"][-1]
    png = np.asarray(Image.open(tmp_path / "cohort" / row["image"]))
    np.testing.assert_allclose(png / 65535, brain_cohort.images[-1], atol=1 / 65535)
    mask = np.asarray(Image.open(tmp_path / "cohort" / row["mask"])) > 0
    np.testing.assert_array_equal(mask, brain_cohort.masks[-1])
    assert row["finding"] == brain_cohort.findings[brain_cohort.finding[-1]]
    assert (tmp_path / "cohort" / "preview.png").is_file()


def test_cli_build_writes_a_readable_cohort(tmp_path, capsys):
    out = tmp_path / "built"
    args = ["build", "chest-xray", "--out", str(out), "--resolution", "32", "--subjects", "3"]
    assert main([*args, "--timepoints", "2", "--seed", "5"]) == 0
    cohort = read_cohort(out)
    assert cohort.images.shape == (6, 32, 32)
    assert cohort.seed == 5
    assert "chest-xray: 6 images 32x32" in capsys.readouterr().out
