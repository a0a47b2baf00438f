"""The difficulty dial of a template's practice cases, as plain values.

Level 1 is the template as written: its lesions at their full severity, anatomy pulled
towards the typical (the easiest truncation). Each level up scales every severity of the
case down (a smaller, fainter lesion) and raises the truncation (less typical anatomy around
it), linearly to the hardest level's settings. A stored case's level is read back from what
made it: its peak severity against the template's (the lesion's size and contrast are
what make a finding hard to see).

The level a trainee practises moves with their answers: a streak of right answers at one
level opens the next; a wrong answer brings the level below back at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from fsrs import Rating

# Right answers in a row at one level (ratings above Again) that open the next level.
PROMOTE_AFTER_STREAK = 2


@dataclass(frozen=True)
class Dial:
    levels: int = 4
    hardest_severity_scale: float = 0.4  # level ``levels`` makes lesions at 40% severity
    easiest_truncation: float = 0.6
    hardest_truncation: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.levels <= 10:
            raise ValueError("levels must be 1 to 10")
        if not 0.05 <= self.hardest_severity_scale <= 1.0:
            raise ValueError("hardest_severity_scale must lie in [0.05, 1]")
        for name in ("easiest_truncation", "hardest_truncation"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]")

    def _fraction(self, level: int) -> float:
        if not 1 <= level <= self.levels:
            raise ValueError(f"level must be 1 to {self.levels}, not {level}")
        return 0.0 if self.levels == 1 else (level - 1) / (self.levels - 1)

    def severity_scale(self, level: int) -> float:
        """What the template's severities are multiplied by at ``level``."""
        return 1.0 + (self.hardest_severity_scale - 1.0) * self._fraction(level)

    def truncation(self, level: int) -> float:
        return self.easiest_truncation + (
            self.hardest_truncation - self.easiest_truncation
        ) * self._fraction(level)

    def level_of(self, severity_scale: float, truncation: float) -> int:
        """The level whose severity scale lies nearest a case's (its peak severity over the
        template's); truncation decides only between levels of equal severity."""

        def distance(level: int) -> tuple[float, float]:
            return (
                round(abs(self.severity_scale(level) - severity_scale), 9),
                abs(self.truncation(level) - truncation),
            )

        return min(range(1, self.levels + 1), key=distance)


def level_to_open(dial: Dial, level: int, rating: Rating, streak: int) -> int | None:
    """The level a review at ``level`` opens or brings back (``streak``: right answers in a
    row at this level, this one included); None when it moves nothing."""
    if rating == Rating.Again:
        return level - 1 if level > 1 else None
    if streak >= PROMOTE_AFTER_STREAK and level < dial.levels:
        return level + 1
    return None
