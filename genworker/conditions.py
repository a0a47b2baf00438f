"""The condition vector every Gantry generator takes.

A generator is conditioned on a finding (one-hot over the model's findings) and
three continuous values: severity in [0, 1], age and sex. The schema is saved in
the model card, so a worker can build condition vectors without the training code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

AGE_CENTRE = 50.0  # years; age enters the network as (age - AGE_CENTRE) / AGE_SCALE
AGE_SCALE = 25.0
SEXES = ("F", "M")


@dataclass(frozen=True)
class ConditionSchema:
    """Layout of the condition vector: ``[one-hot finding | severity | age | sex]``."""

    findings: tuple[str, ...]

    @property
    def dim(self) -> int:
        return len(self.findings) + 3

    def encode(
        self,
        finding: str | np.ndarray,
        severity: float | np.ndarray,
        age: float | np.ndarray,
        sex: str | np.ndarray,
    ) -> np.ndarray:
        """Condition vectors of shape [n, dim] (float32); scalars broadcast to n = 1.

        ``finding`` names a finding or holds finding indices; ``sex`` is "F"/"M" or 0/1.
        """
        severity = np.atleast_1d(np.asarray(severity, dtype=np.float32))
        age = np.atleast_1d(np.asarray(age, dtype=np.float32))
        n = max(len(severity), len(age), np.size(finding), np.size(sex))
        if isinstance(finding, str):
            finding_index = np.full(n, self.finding_index(finding))
        else:
            finding_index = np.broadcast_to(np.asarray(finding, dtype=np.int64), (n,))
        if isinstance(sex, str):
            sex_value = np.full(n, SEXES.index(sex), dtype=np.float32)
        else:
            sex_value = np.broadcast_to(np.asarray(sex, dtype=np.float32), (n,))
        if np.any(severity < 0) or np.any(severity > 1):
            raise ValueError("severity must lie in [0, 1]")
        out = np.zeros((n, self.dim), dtype=np.float32)
        out[np.arange(n), finding_index] = 1.0
        k = len(self.findings)
        out[:, k] = np.broadcast_to(severity, (n,))
        out[:, k + 1] = (np.broadcast_to(age, (n,)) - AGE_CENTRE) / AGE_SCALE
        out[:, k + 2] = sex_value
        return out

    def finding_index(self, finding: str) -> int:
        try:
            return self.findings.index(finding)
        except ValueError:
            raise ValueError(
                f"finding {finding!r} is not one of this model's findings {list(self.findings)}"
            ) from None

    def to_dict(self) -> dict:
        return {**asdict(self), "continuous": ["severity", "age", "sex"], "dim": self.dim}

    @classmethod
    def from_dict(cls, data: dict) -> ConditionSchema:
        return cls(findings=tuple(data["findings"]))
