"""The 256² brain MRI simulator: real anatomy, three aligned contrasts, gliomas that look like
gliomas where they were asked for, and ground truth that matches the image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from genworker.cohorts import brain_mri, glioma, sources
from genworker.metrics import ssim_map

pytestmark = pytest.mark.skipif(
    not sources.is_fetched("antspyx"),
    reason=f"the antspyx anatomy is not fetched (run `{sources.FETCH_COMMAND}`)",
)


def _glioma_track(seed: int, timepoints: int = 3) -> brain_mri.ScanTrack:
    return brain_mri.simulate_track(np.random.default_rng([seed, 1]), 1, timepoints=timepoints)


@pytest.fixture(scope="module")
def track():
    return _glioma_track(11)


def test_every_real_brain_the_packages_ship_is_a_base():
    people = {base.source.split(" z=")[0] for base in brain_mri.base_slices()}
    assert people == {
        *(f"antspyx {name}" for name in brain_mri.JPEG_SLICES),
        "Colin27",
        "MNI152 2009",
    }
    for base in brain_mri.base_slices():
        shares = base.tissue.sum(0)
        assert shares.max() <= 1.0 + 1e-5
        # CSF darkest, white matter brightest: the mixture's classes are in T1 order.
        assert base.tissue[2].sum() > 0.2 * shares.sum()


def test_a_track_is_three_aligned_contrasts_at_256(track):
    assert track.clean.shape == (3, 3, 256, 256)
    assert track.normal.shape == (3, 256, 256)
    brain = track.anatomy.sum(0) > 0.5
    for contrast in range(3):
        inside = track.normal[contrast][brain].mean()
        outside = track.normal[contrast][~ndimage.binary_dilation(brain, iterations=8)].mean()
        assert inside > 5 * outside + 0.05


def test_the_contrasts_follow_the_tissue_signal_model(track):
    wm = track.anatomy[2] > 0.9
    gm = track.anatomy[1] > 0.9
    csf = track.anatomy[0] > 0.9
    t1, flair, _ = track.normal
    assert t1[wm].mean() > t1[gm].mean() > t1[csf].mean()  # T1: white > grey > CSF
    assert flair[gm].mean() > flair[wm].mean() > flair[csf].mean()  # FLAIR: CSF nulled


def test_a_glioma_enhances_on_t1c_and_swells_on_flair(track):
    last = track.clean[-1]
    mask = track.masks[-1]
    ring = ndimage.binary_dilation(mask, iterations=6) & ~ndimage.binary_dilation(
        mask, iterations=2
    )
    normal_wm = (track.anatomy[2] > 0.9) & ~ndimage.binary_dilation(mask, iterations=25)
    t1, flair, t1c = last
    assert np.percentile(t1c[mask], 95) > t1c[normal_wm].mean() + 0.1  # enhancing rim
    ring_wm = ring & (track.anatomy[2] > 0.6)
    assert flair[ring_wm].mean() > flair[normal_wm].mean() + 0.1  # oedema in white matter
    assert t1[mask].mean() < t1[normal_wm].mean() - 0.15  # hypointense on T1


def test_the_glioma_grows_in_one_piece_inside_the_brain(track):
    brain = ndimage.binary_dilation(track.anatomy.sum(0) > 0.5, iterations=3)
    areas = track.masks.sum(axis=(1, 2))
    assert (np.diff(areas) > 0).all()
    assert (np.diff(track.severity) >= 0).all()
    for mask in track.masks:
        assert ndimage.label(mask)[1] == 1
        assert not (mask & ~brain).any()


@pytest.mark.parametrize(("side", "location"), [("left", "frontal"), ("right", "occipital")])
def test_the_tumour_grows_where_it_was_asked_for_in_radiological_orientation(side, location):
    rng = np.random.default_rng(5)
    subject = brain_mri.draw_subject(rng, 50.0, 1)
    grown = brain_mri.grow_tumour(subject.tissue, rng, np.array([0.3]), side, location)
    assert grown is not None
    mask = grown[0][0] > 0.5
    facts = brain_mri.facts(mask, subject.tissue)
    assert (facts["side"], facts["location"]) == (side, location)
    midline, _ = glioma.brain_axes(subject.tissue.sum(0) > 0.5)
    # Columns run from the patient's right to their left: a left tumour is right of centre.
    assert (facts["centroid"][1] > midline) == (side == "left")


def test_a_stray_pixel_in_the_anatomy_moves_no_lobe_boundary():
    """A generated patient's decoded anatomy maps can carry a stray pixel at the image's
    corner: it must not stretch the brain's extent, or a posterior tumour is read as
    temporoparietal."""
    rng = np.random.default_rng(5)
    subject = brain_mri.draw_subject(rng, 50.0, 1)
    grown = brain_mri.grow_tumour(subject.tissue, rng, np.array([0.3]), "right", "occipital")
    mask = grown[0][0] > 0.5
    speck = subject.tissue.copy()
    speck[:, -1, 0] = 1.0  # the last row: the posterior edge of the image
    brain = subject.tissue.sum(0) > 0.5
    assert glioma.brain_axes(speck.sum(0) > 0.5) == glioma.brain_axes(brain)
    assert glioma.brain_axes(speck.sum(0) > 0.5)[1][1] < brain.shape[0] - 1
    assert brain_mri.facts(mask, speck)["location"] == "occipital"


def test_outside_the_tumour_the_patient_stays_the_same(track):
    grown = ndimage.binary_dilation(track.masks[-1], iterations=30)
    similarity = ssim_map(track.clean[0][0], track.clean[-1][0])
    assert similarity[~grown].mean() > 0.9


def test_lesion_facts_are_in_millimetres(track):
    facts = brain_mri.facts(track.masks[-1], track.anatomy)
    assert facts["area_mm2"] == pytest.approx(track.masks[-1].sum() * brain_mri.PIXEL_MM**2)
    equal_area_diameter = 2 * np.sqrt(facts["area_mm2"] / np.pi)
    assert equal_area_diameter <= facts["longest_diameter_mm"] < 3 * equal_area_diameter
    assert facts["components"] == 1
    assert not facts["touches_border"]


def test_the_same_seed_simulates_the_same_subject():
    again = _glioma_track(11)
    other = _glioma_track(12)
    first = _glioma_track(11)
    np.testing.assert_array_equal(first.clean, again.clean)
    assert not np.array_equal(first.clean, other.clean)


def test_acquisition_adds_rician_noise_of_the_subjects_level(track):
    rng = np.random.default_rng(0)
    background = np.zeros((1, 3, 64, 64), np.float32)
    noisy = brain_mri.acquire(background, track.noise, rng)
    # The magnitude of complex Gaussian noise of sd s has mean s * sqrt(pi / 2).
    expected = track.noise * np.sqrt(np.pi / 2)
    np.testing.assert_allclose(noisy[0].mean(axis=(1, 2)), expected, rtol=0.05)


def test_a_missing_source_names_the_command_that_fetches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTRY_ANATOMY_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="python -m genworker anatomy fetch"):
        sources.data_path("antspyx", "data/ch2.nii.gz")
