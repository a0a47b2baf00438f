"""Each metric against a closed form or an independent (slow, obvious) computation."""

import itertools

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

from genworker import metrics


def exact_gaussian_sample(rng, n, mean, cov):
    """n rows whose sample mean and (n-1) covariance are exactly ``mean`` and ``cov``."""
    x = rng.standard_normal((n, len(mean)))
    x -= x.mean(axis=0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T  # whitened
    return x @ np.linalg.cholesky(cov).T + mean


def independent_frechet(mu_a, cov_a, mu_b, cov_b):
    """The textbook formula with a general matrix square root of C_a C_b."""
    root = np.real(scipy.linalg.sqrtm(cov_a @ cov_b))
    return np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)


def random_covariance(rng, d):
    m = rng.standard_normal((d, d))
    return m @ m.T / d + 0.1 * np.eye(d)


def test_frechet_distance_of_diagonal_gaussians_has_its_closed_form():
    rng = np.random.default_rng(0)
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a = exact_gaussian_sample(rng, 400, mu_a, np.diag(var_a))
    b = exact_gaussian_sample(rng, 300, mu_b, np.diag(var_b))
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_matches_an_independent_computation_for_full_covariances():
    rng = np.random.default_rng(1)
    d = 6
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    cov_a, cov_b = random_covariance(rng, d), random_covariance(rng, d)
    a = exact_gaussian_sample(rng, 200, mu_a, cov_a)
    b = exact_gaussian_sample(rng, 200, mu_b, cov_b)
    expected = independent_frechet(mu_a, cov_a, mu_b, cov_b)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_of_a_set_with_itself_is_zero_even_when_rank_deficient():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((20, 50))  # 20 rows in 50 dimensions: singular covariance
    distance = metrics.frechet_distance(a, a)
    assert np.isfinite(distance)
    assert distance == pytest.approx(0.0, abs=1e-6)
    assert metrics.frechet_distance(a, a + 1.0) == pytest.approx(50.0, rel=1e-4)


def independent_mmd2(x, y):
    def k(u, v):
        return (u @ v / len(u) + 1) ** 3

    m = len(x)
    pairs = list(itertools.permutations(range(m), 2))
    xx = sum(k(x[i], x[j]) for i, j in pairs) / len(pairs)
    yy = sum(k(y[i], y[j]) for i, j in pairs) / len(pairs)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    return xx + yy - 2 * xy


def test_kid_on_whole_sets_equals_an_explicit_unbiased_mmd():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((12, 4)), rng.standard_normal((12, 4)) + 0.5
    mean, std = metrics.kernel_inception_distance(x, y, subsets=3, subset_size=12, seed=0)
    assert mean == pytest.approx(independent_mmd2(x, y), rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set, reordered


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shifted_one():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    same, same_std = metrics.kernel_inception_distance(a, b, subsets=10, subset_size=100)
    shifted, _ = metrics.kernel_inception_distance(a, b + 1.0, subsets=10, subset_size=100)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 10 * abs(same)
    assert shifted > 0.1


def independent_precision(real, fake, k):
    inside = 0
    for f in fake:
        for r in real:
            radius = np.sort(np.linalg.norm(real - r, axis=1))[k]
            if np.linalg.norm(f - r) <= radius:
                inside += 1
                break
    return inside / len(fake)


def test_precision_recall_is_one_for_identical_sets_and_zero_for_disjoint_ones():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((60, 3))
    assert metrics.precision_recall(real, real.copy()) == {"precision": 1.0, "recall": 1.0}
    far = metrics.precision_recall(real, real + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0}


def test_mode_collapse_keeps_precision_and_loses_recall():
    rng = np.random.default_rng(6)
    real = rng.standard_normal((200, 2))
    collapsed = 0.1 * rng.standard_normal((200, 2))  # all fakes in the middle of the real cloud
    result = metrics.precision_recall(real, collapsed, k=3)
    assert result["precision"] > 0.95
    assert result["recall"] < 0.3
    assert result["precision"] == pytest.approx(independent_precision(real, collapsed, 3))
    assert result["recall"] == pytest.approx(independent_precision(collapsed, real, 3))


def test_controllability_of_perfectly_following_series():
    requested = np.tile(np.linspace(0, 1, 5), (4, 1))
    predicted = 0.2 + 0.5 * requested**2  # monotone, not linear: rank correlation still 1
    assert metrics.controllability(requested, predicted) == {
        "spearman": pytest.approx(1.0),
        "monotone_fraction": 1.0,
    }


def test_controllability_counts_reversals_beyond_the_tolerance():
    requested = np.tile(np.linspace(0, 1, 4), (4, 1))
    predicted = requested.copy()
    predicted[1, 2] = predicted[1, 1] - 0.01  # a dip within the default tolerance of 0.02
    predicted[3, 3] = 0.0  # a clear reversal
    assert metrics.controllability(requested, predicted)["monotone_fraction"] == 0.75
    strict = metrics.controllability(requested, predicted, tolerance=0.0)
    assert strict["monotone_fraction"] == 0.5


def test_series_that_do_not_move_are_not_monotone():
    requested = np.tile(np.linspace(0, 1, 4), (2, 1))
    predicted = np.array([[0.5, 0.5, 0.51, 0.51], [0.3, 0.5, 0.7, 0.9]])
    assert metrics.controllability(requested, predicted)["monotone_fraction"] == 0.5
    regressing = metrics.controllability(requested[:, ::-1], predicted[:, ::-1])
    assert regressing["monotone_fraction"] == 0.5  # a falling request wants falling predictions


def test_controllability_spearman_is_the_pooled_rank_correlation():
    rng = np.random.default_rng(7)
    requested = rng.random((5, 6))
    predicted = requested + 0.3 * rng.standard_normal((5, 6))

    def ranks(v):
        return np.argsort(np.argsort(v.ravel())).astype(float)

    expected = np.corrcoef(ranks(requested), ranks(predicted))[0, 1]
    result = metrics.controllability(requested, predicted)
    assert result["spearman"] == pytest.approx(expected)


def test_ssim_of_constant_images_has_its_closed_form_and_is_one_for_equal_images():
    a, b = np.full((16, 16), 0.2), np.full((16, 16), 0.6)
    expected = (2 * 0.2 * 0.6 + metrics.SSIM_C1) / (0.2**2 + 0.6**2 + metrics.SSIM_C1)
    assert np.allclose(metrics.ssim_map(a, b), expected)
    textured = np.random.default_rng(8).random((16, 16))
    assert np.allclose(metrics.ssim_map(textured, textured), 1.0)


def lesion_series(rng, change_outside=0.0):
    """[T, H, W] images of one anatomy with a growing bright square, and its masks."""
    anatomy = rng.random((32, 32)) * 0.5
    images, masks = [], []
    for t in range(4):
        mask = np.zeros((32, 32), dtype=bool)
        mask[12 : 14 + 2 * t, 12 : 14 + 2 * t] = True
        image = anatomy + change_outside * rng.random((32, 32)) * t
        images.append(np.where(mask, 1.0, image))
        masks.append(mask)
    return np.array(images), np.array(masks)


def test_identity_preservation_ignores_the_lesion_and_sees_changes_outside_it():
    rng = np.random.default_rng(9)
    stable, masks = lesion_series(rng)
    changing, changing_masks = lesion_series(rng, change_outside=0.3)
    assert metrics.identity_preservation([stable], [masks]) == pytest.approx(1.0)
    assert metrics.identity_preservation([stable]) < 0.99  # whole image: the lesion counts
    changed = metrics.identity_preservation([changing], [changing_masks])
    assert changed < 0.9
    both = metrics.identity_preservation(np.array([stable, changing]), [masks, changing_masks])
    assert both == pytest.approx((1.0 + changed) / 2)  # mean over the pairs of both series


def test_subject_distance_pairs_images_only_within_a_finding():
    images = np.array([0.0, 0.5, 1.0, 1.0, 1.0, 1.0])[:, None, None] * np.ones((6, 2, 3))
    finding = np.array([0, 0, 1, 1, 1, 1])
    # finding 0: one pair, 0.5 apart; finding 1: two pairs of equal images
    assert metrics.subject_distance(images, finding) == pytest.approx(0.5 / 3)
    assert metrics.subject_distance(images[[0, 2]], finding[[0, 2]]) is None  # no pair
    assert metrics.mean_pair_distance(images[:2], images[2:4]) == pytest.approx(0.75)


def test_memorisation_catches_an_exact_copy_and_reports_its_source():
    rng = np.random.default_rng(10)
    train, held_out = rng.standard_normal((50, 16)), rng.standard_normal((40, 16))
    threshold = metrics.calibrate_memorisation_threshold(train, held_out, quantile=0.01)
    generated = np.vstack([rng.standard_normal((9, 16)), train[17]])
    result = metrics.memorisation(generated, train, threshold)
    expected_share = np.mean(cdist(generated, train).min(axis=1) <= threshold)
    assert result["share_too_close"] == pytest.approx(expected_share)
    assert result["share_too_close"] >= 0.1  # at least the copy
    assert result["nearest_index"][-1] == 17
    assert result["nearest_distance"][-1] == pytest.approx(0.0, abs=1e-6)
    assert metrics.is_too_close(train[17] + 1e-4, train, threshold)[:2] == (True, 17)
    too_close, _, distance = metrics.is_too_close(held_out[0], train, threshold)
    assert distance >= threshold
    assert not too_close


def test_threshold_is_the_quantile_of_brute_force_nearest_distances():
    rng = np.random.default_rng(11)
    train, held_out = rng.standard_normal((30, 5)), rng.standard_normal((25, 5))
    brute = cdist(held_out, train).min(axis=1)
    threshold = metrics.calibrate_memorisation_threshold(train, held_out, quantile=0.2)
    assert threshold == pytest.approx(np.quantile(brute, 0.2))
    index, distance = metrics.nearest_neighbours(held_out, train, chunk=7)
    assert np.array_equal(index, cdist(held_out, train).argmin(axis=1))
    assert np.allclose(distance, brute)
