"""Training cohorts: simulated on real anatomy shipped in packages, or imported.

Every source produces a :class:`Cohort`, the one shape training, metrics and the
cohort CLI consume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Cohort:
    """Images with their labels; row i of every array describes image i.

    images:   float32 [N, H, W] in [0, 1] (display-normalised intensity)
    masks:    bool    [N, H, W], lesion ground truth (all False where none)
    finding:  int64   [N], index into ``findings``
    severity: float32 [N] in [0, 1] (0 where the finding is "normal")
    age:      float32 [N], years
    sex:      int8    [N], 0 = F, 1 = M
    track:    int64   [N], simulated subject; one track holds one subject at
              several severities (longitudinal)
    held_out: bool    [N], True for the held-out split (whole tracks, never split)
    """

    name: str
    findings: tuple[str, ...]
    images: np.ndarray
    masks: np.ndarray
    finding: np.ndarray
    severity: np.ndarray
    age: np.ndarray
    sex: np.ndarray
    track: np.ndarray
    held_out: np.ndarray
    seed: int
    modality: str  # DICOM modality of the images: "MR", "DX", ...
    provenance: dict = field(default_factory=dict)  # source anatomy, its licence, parameters

    def __post_init__(self) -> None:
        n = len(self.images)
        assert self.images.ndim == 3, "images must be [N, H, W]"
        for name in ("masks", "finding", "severity", "age", "sex", "track", "held_out"):
            assert len(getattr(self, name)) == n, f"{name} must have {n} rows"

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, rows: np.ndarray) -> Cohort:
        """The cohort restricted to ``rows`` (a boolean mask or index array)."""
        picked = {
            name: getattr(self, name)[rows]
            for name in (
                "images",
                "masks",
                "finding",
                "severity",
                "age",
                "sex",
                "track",
                "held_out",
            )
        }
        return Cohort(
            name=self.name,
            findings=self.findings,
            seed=self.seed,
            modality=self.modality,
            provenance=self.provenance,
            **picked,
        )

    def train(self) -> Cohort:
        return self.subset(~self.held_out)

    def held_out_part(self) -> Cohort:
        return self.subset(self.held_out)
