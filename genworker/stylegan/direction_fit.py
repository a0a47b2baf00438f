"""The direction in w of a finding, fitted to an educator's labels of an unconditional
imported model's samples.

An unconditional model has no class to walk toward, so its finding is taught: the educator
labels samples drawn at fixed seeds as showing the finding or not, and the direction is the
normal of a linear classifier on their w (InterFaceGAN). The classifier is ridge-regularised
least squares on the labels as -1/+1, in numpy alone (no torch: the web process checks
labels with it, and a worker needs nothing more). Its normal is scaled so that severity 1
moves w by the gap between the two groups' mean w along it, as a class-conditional model's
severity 1 reaches the disease class's mean offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SAMPLE_SEEDS = tuple(range(48))  # the samples an educator labels
PREVIEW_SEVERITIES = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_PER_LABEL = 5  # samples needed on each side of the classifier
RIDGE = 0.1  # times the mean variance of w per sample: steadies a fit on few samples


@dataclass(frozen=True)
class FittedDirection:
    vector: np.ndarray  # float32 [w_dim], the w shift of severity 1
    training_accuracy: float  # share of the labelled samples the classifier puts right
    positives: int
    negatives: int


def fit_direction(ws: np.ndarray, labels: Sequence[bool]) -> FittedDirection:
    """The direction in w that separates the samples labelled True from the others."""
    ws = np.asarray(ws, np.float64)
    y = np.where(np.asarray(labels, bool), 1.0, -1.0)
    if ws.ndim != 2 or len(ws) != len(y):
        raise ValueError(f"{len(y)} labels for w of shape {list(ws.shape)}")
    positives, negatives = int((y > 0).sum()), int((y < 0).sum())
    if min(positives, negatives) < MIN_PER_LABEL:
        raise ValueError(
            f"label at least {MIN_PER_LABEL} samples each way (shows the finding: {positives}, "
            f"does not: {negatives})"
        )
    centred = ws - ws.mean(axis=0)
    ridge = RIDGE * max(float(centred.var(axis=0).mean()), 1e-12) * len(ws)
    gram = centred.T @ centred + ridge * np.eye(ws.shape[1])
    normal = np.linalg.solve(gram, centred.T @ (y - y.mean()))
    normal /= np.linalg.norm(normal)
    gap = float((ws[y > 0].mean(axis=0) - ws[y < 0].mean(axis=0)) @ normal)
    if gap <= 0:
        raise ValueError("the labelled groups do not separate along any direction in w")
    scores = centred @ normal
    threshold = (scores[y > 0].mean() + scores[y < 0].mean()) / 2
    accuracy = float(((scores > threshold) == (y > 0)).mean())
    return FittedDirection(
        vector=(normal * gap).astype(np.float32),
        training_accuracy=accuracy,
        positives=positives,
        negatives=negatives,
    )
