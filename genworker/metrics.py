"""Quality measures for a generator, as pure functions of feature arrays and images.

Features are rows of a float array [N, D]. The distribution measures (Fréchet
distance, KID, precision/recall) compare a generated set with a real set;
controllability and identity preservation judge progression series;
memorisation finds each generated image's nearest training image; the subject distance
says how far apart images of one finding are (the spread z should give a generator).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.spatial
import scipy.stats
from scipy import ndimage

SSIM_SIGMA = 1.5  # pixels; Gaussian window of the local SSIM statistics
SSIM_RADIUS = 5  # pixels; the window is cut off here (11x11, as Wang et al. 2004)
SSIM_C1 = 0.01**2  # stabilisers for images with data range 1
SSIM_C2 = 0.03**2


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D], [M, D].

    ``|mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))``. The trace of the
    root is taken as ``Tr (C_a^(1/2) C_b C_a^(1/2))^(1/2)``, the same number
    reached through two symmetric eigendecompositions: real by construction
    (no imaginary round-off to discard), stable for the singular covariances
    of sets smaller than D, and far faster than a general matrix square root.
    """
    mu_a, cov_a = _mean_and_covariance(feat_a)
    mu_b, cov_b = _mean_and_covariance(feat_b)
    root_a = _psd_sqrt(cov_a)
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)))
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    return float(max(distance, 0.0))


def kernel_inception_distance(
    feat_a: np.ndarray,
    feat_b: np.ndarray,
    *,
    subsets: int = 20,
    subset_size: int = 200,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean and standard deviation over random subsets of the unbiased MMD².

    Kernel ``k(x, y) = (x·y / D + 1)^3`` (Bińkowski et al. 2018). Each subset
    draws ``subset_size`` rows of each set without replacement (capped at the
    smaller set's size).
    """
    a = np.asarray(feat_a, dtype=np.float64)
    b = np.asarray(feat_b, dtype=np.float64)
    _check_features(a, b)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("KID needs at least two rows in each feature set")
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            _unbiased_mmd2(
                a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
            )
            for _ in range(subsets)
        ]
    )
    return float(values.mean()), float(values.std())


def precision_recall(
    real_feats: np.ndarray, fake_feats: np.ndarray, *, k: int = 3
) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its points, each ball's
    radius the distance to the point's k-th nearest neighbour in its own set.
    Precision: share of fake points inside the real manifold; recall: share of
    real points inside the fake manifold.
    """
    real = np.asarray(real_feats, dtype=np.float64)
    fake = np.asarray(fake_feats, dtype=np.float64)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} rows in each set")
    return {
        "precision": _share_inside_manifold(fake, real, k),
        "recall": _share_inside_manifold(real, fake, k),
    }


def controllability(
    requested: np.ndarray, predicted: np.ndarray, *, tolerance: float = 0.02
) -> dict[str, float]:
    """How well predicted severity follows requested severity along series [S, T].

    ``spearman``: rank correlation of all S·T pairs pooled. ``monotone_fraction``:
    share of series that progress monotonically: predicted severity never moves
    against the requested direction by more than ``tolerance`` (in severity
    units) between consecutive timepoints — so a regressor's noise on two nearly
    equal images is not a reversal — and moves, from first to last timepoint,
    by more than ``tolerance`` in the requested direction — so a generator that
    ignores severity does not pass as monotone.
    """
    requested = np.asarray(requested, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if requested.ndim != 2 or requested.shape != predicted.shape:
        raise ValueError(f"series must be [S, T] alike, got {requested.shape}, {predicted.shape}")
    spearman = scipy.stats.spearmanr(requested.ravel(), predicted.ravel()).statistic
    step_with_request = np.sign(np.diff(requested, axis=1)) * np.diff(predicted, axis=1)
    overall = np.sign(requested[:, -1] - requested[:, 0]) * (predicted[:, -1] - predicted[:, 0])
    monotone = np.all(step_with_request >= -tolerance, axis=1) & (overall > tolerance)
    return {"spearman": float(spearman), "monotone_fraction": float(monotone.mean())}


def identity_preservation(
    series_images: Sequence[np.ndarray],
    series_masks: Sequence[np.ndarray | None] | None = None,
    *,
    margin: int = SSIM_RADIUS,
) -> float:
    """Mean SSIM between consecutive timepoints, outside the lesion.

    ``series_images`` is [S, T, H, W] in [0, 1] or a list of [T, H, W] series of
    different lengths; ``series_masks`` likewise (bool), or None to compare whole
    images. Pixels inside the union of the two timepoints' masks, grown by
    ``margin`` pixels (the SSIM window's radius) so windows reaching into the
    lesion are left out too, do not count. 1 means the anatomy outside the lesion is unchanged.
    """
    if series_masks is None:
        series_masks = [None] * len(series_images)
    if not any(len(images) >= 2 for images in series_images):
        raise ValueError("identity preservation needs series of two or more timepoints")
    scores = []
    for images, masks in zip(series_images, series_masks, strict=True):
        for t in range(len(images) - 1):
            outside = np.ones(images[t].shape, dtype=bool)
            if masks is not None:
                lesion = np.asarray(masks[t], dtype=bool) | np.asarray(masks[t + 1], dtype=bool)
                if margin > 0 and lesion.any():
                    square = np.ones((2 * margin + 1, 2 * margin + 1), dtype=bool)
                    lesion = ndimage.binary_dilation(lesion, structure=square)
                outside = ~lesion
            if outside.any():
                scores.append(ssim_map(images[t], images[t + 1])[outside].mean())
    return float(np.mean(scores)) if scores else float("nan")


def ssim_map(image_a: np.ndarray, image_b: np.ndarray) -> np.ndarray:
    """Local structural similarity (Wang et al. 2004) of two [H, W] images in [0, 1]."""
    a = np.asarray(image_a, dtype=np.float64)
    b = np.asarray(image_b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"images must be [H, W] of equal shape, got {a.shape}, {b.shape}")

    def smooth(x: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(x, SSIM_SIGMA, mode="reflect", radius=SSIM_RADIUS)

    mu_a, mu_b = smooth(a), smooth(b)
    var_a = smooth(a * a) - mu_a**2
    var_b = smooth(b * b) - mu_b**2
    cov = smooth(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mu_a**2 + mu_b**2 + SSIM_C1) * (var_a + var_b + SSIM_C2)
    )


def mean_pair_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference between row i of ``a`` and row i of ``b`` (same shapes)."""
    return float(np.abs(np.asarray(a) - np.asarray(b)).mean(dtype=np.float64))


def subject_distance(images: np.ndarray, finding: np.ndarray, *, seed: int = 0) -> float | None:
    """:func:`mean_pair_distance` of images [N, ...] paired at random within each finding:
    how far apart two subjects with the same finding are. None without any pair."""
    rng = np.random.default_rng(seed)
    firsts, seconds = [], []
    for value in np.unique(finding):
        rows = rng.permutation(np.flatnonzero(finding == value))
        pairs = len(rows) // 2
        firsts.append(rows[:pairs])
        seconds.append(rows[pairs : 2 * pairs])
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    return mean_pair_distance(images[first], images[second]) if len(first) else None


def memorisation(
    generated_feats: np.ndarray, train_feats: np.ndarray, threshold: float
) -> dict[str, object]:
    """Each generated row's nearest training row, and the share within ``threshold``.

    Returns ``share_too_close`` (float), ``nearest_index`` (int array [N]) and
    ``nearest_distance`` (float array [N]).
    """
    index, distance = nearest_neighbours(generated_feats, train_feats)
    return {
        "share_too_close": float(np.mean(distance <= threshold)),
        "nearest_index": index,
        "nearest_distance": distance,
    }


def calibrate_memorisation_threshold(
    train_feats: np.ndarray, held_out_feats: np.ndarray, *, quantile: float = 0.01
) -> float:
    """The ``quantile`` of held-out-to-nearest-training distances.

    Held-out images are genuinely new subjects; a generated image nearer to a
    training image than all but ``quantile`` of them is treated as memorised.
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must lie in [0, 1], got {quantile}")
    _, distance = nearest_neighbours(held_out_feats, train_feats)
    return float(np.quantile(distance, quantile))


def is_too_close(
    image_feat: np.ndarray, train_feats: np.ndarray, threshold: float
) -> tuple[bool, int, float]:
    """Whether one image's features [D] lie within ``threshold`` of a training image.

    Returns (too close, nearest training row, its distance): the check to run
    before publishing a case.
    """
    index, distance = nearest_neighbours(np.asarray(image_feat)[None, :], train_feats)
    return bool(distance[0] <= threshold), int(index[0]), float(distance[0])


def nearest_neighbours(
    query: np.ndarray, reference: np.ndarray, *, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Index [N] and Euclidean distance [N] of each query row's nearest reference row."""
    query = np.asarray(query, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    _check_features(query, reference)
    reference_sq = np.sum(reference**2, axis=1)
    indices, distances = [], []
    for start in range(0, len(query), chunk):
        block = query[start : start + chunk]
        squared = np.sum(block**2, axis=1)[:, None] + reference_sq[None, :]
        squared -= 2 * block @ reference.T
        nearest = np.argmin(squared, axis=1)
        indices.append(nearest)
        distances.append(np.sqrt(np.maximum(squared[np.arange(len(block)), nearest], 0.0)))
    return np.concatenate(indices), np.concatenate(distances)


def _check_features(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be [N, D] and [M, D], got {a.shape} and {b.shape}")


def _mean_and_covariance(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be [N, D], got {x.shape}")
    if len(x) < 2:
        raise ValueError("a covariance needs at least two rows")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (round-off negatives -> 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    dim = x.shape[1]
    k_xx = (x @ x.T / dim + 1) ** 3
    k_yy = (y @ y.T / dim + 1) ** 3
    k_xy = (x @ y.T / dim + 1) ** 3
    m = len(x)
    off_diagonal = m * (m - 1)
    return float(
        (k_xx.sum() - np.trace(k_xx)) / off_diagonal
        + (k_yy.sum() - np.trace(k_yy)) / off_diagonal
        - 2 * k_xy.mean()
    )


def _share_inside_manifold(points: np.ndarray, manifold: np.ndarray, k: int) -> float:
    """Share of ``points`` within the k-NN radius of at least one ``manifold`` point."""
    own = scipy.spatial.distance.cdist(manifold, manifold)
    radii = np.sort(own, axis=1)[:, k]  # column 0 is the point itself
    to_manifold = scipy.spatial.distance.cdist(points, manifold)
    return float(np.mean(np.any(to_manifold <= radii[None, :], axis=1)))
