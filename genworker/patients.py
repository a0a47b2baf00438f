"""Patient model: draw a synthetic patient from a case template's recipe.

A recipe gives the age range, sex mix, comorbidity probabilities, the schedule of
studies and the severity course; :func:`draw_patient` turns it and a seeded RNG
into demographics, an obviously synthetic name and ID, and a filled vignette;
:func:`study_timeline` dates the studies; :func:`conditions_for` maps the patient
to a generator's condition vectors. Pure numpy and stdlib: the web process may
validate recipes without torch.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta

import numpy as np

from genworker.conditions import ConditionSchema

MAX_AGE = 110  # years; the oldest age a recipe may ask for

# Severity courses between severity_from and severity_to, as functions of the
# fraction of the timeline elapsed (0 at the first study, 1 at the last).
SEVERITY_CURVES = {
    "linear": lambda t: t,
    "accelerating": lambda t: t**2,  # slow start, e.g. a tumour past a latent phase
    "decelerating": lambda t: np.sqrt(t),  # fast start that levels off, e.g. an effusion
}

# Placeholders a vignette may use, each with what it becomes.
VIGNETTE_PLACEHOLDERS = {
    "age": "age in years at the first study",
    "sex_word": "'man' or 'woman'",
    "pronoun": "'he' or 'she'",
    "comorbidities": "comma-separated comorbidities, or 'no known comorbidities'",
    "finding": "the finding the case shows",
    "timepoints": "the number of studies",
    "interval_days": "days between studies",
}


@dataclass(frozen=True)
class PatientRecipe:
    """What a case template says about its patients and their studies.

    ``sex_mix`` is P(male); ``comorbidities`` maps a condition's name to the
    probability a patient has it (drawn independently); ``vignette`` is text with
    ``{placeholder}`` fields from :data:`VIGNETTE_PLACEHOLDERS` (``{{`` and ``}}``
    give literal braces).
    """

    age_min: int = 40
    age_max: int = 75
    sex_mix: float = 0.5
    comorbidities: dict[str, float] = field(default_factory=dict)
    interval_days: int = 90
    timepoints: int = 4
    severity_from: float = 0.1
    severity_to: float = 0.9
    severity_curve: str = "linear"
    vignette: str = ""

    def __post_init__(self) -> None:
        _check_int("age_min", self.age_min, 0, MAX_AGE)
        _check_int("age_max", self.age_max, 0, MAX_AGE)
        if self.age_min > self.age_max:
            raise ValueError(f"age_min ({self.age_min}) must not exceed age_max ({self.age_max})")
        _check_probability("sex_mix", self.sex_mix)
        for name, probability in self.comorbidities.items():
            if not isinstance(name, str) or not name.strip():
                raise ValueError("comorbidities: every name must be a non-empty string")
            _check_probability(f"comorbidities[{name!r}]", probability)
        _check_int("interval_days", self.interval_days, 1, 36500)
        _check_int("timepoints", self.timepoints, 1, 1000)
        _check_probability("severity_from", self.severity_from)
        _check_probability("severity_to", self.severity_to)
        if self.severity_curve not in SEVERITY_CURVES:
            raise ValueError(
                f"severity_curve {self.severity_curve!r} is not one of {list(SEVERITY_CURVES)}"
            )
        if not isinstance(self.vignette, str):
            raise ValueError("vignette must be text")
        _vignette_fields(self.vignette)  # raises ValueError on an unknown placeholder

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PatientRecipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown patient recipe fields: {unknown}")
        values = dict(data)
        if "comorbidities" in values:
            values["comorbidities"] = dict(values["comorbidities"])
        return cls(**values)


@dataclass(frozen=True)
class SyntheticPatientSpec:
    """One drawn patient. ``age`` is in whole years on the first study's date."""

    patient_id: str
    name: str  # DICOM person name, Family^Given
    sex: str  # "F" or "M"
    age: int
    birth_date: date
    comorbidities: tuple[str, ...]
    vignette: str

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "birth_date": self.birth_date.isoformat(),
            "comorbidities": list(self.comorbidities),
        }


def draw_patient(
    recipe: PatientRecipe,
    rng: np.random.Generator,
    *,
    start_date: date,
    finding: str | None = None,
) -> SyntheticPatientSpec:
    """Draw one patient; the same RNG state gives the same patient.

    ``finding`` fills the vignette's ``{finding}``; a vignette that uses it
    without one raises ValueError.
    """
    age = int(rng.integers(recipe.age_min, recipe.age_max + 1))
    sex = "M" if rng.random() < recipe.sex_mix else "F"
    comorbidities = tuple(
        name for name, probability in recipe.comorbidities.items() if rng.random() < probability
    )
    birth_date = _birth_date(age, start_date, rng)
    token = rng.bytes(6).hex()
    values = {
        "age": str(age),
        "sex_word": "man" if sex == "M" else "woman",
        "pronoun": "he" if sex == "M" else "she",
        "comorbidities": ", ".join(comorbidities) or "no known comorbidities",
        "finding": finding,
        "timepoints": str(recipe.timepoints),
        "interval_days": str(recipe.interval_days),
    }
    return SyntheticPatientSpec(
        patient_id=f"SYNTH-{token}",
        name=f"SYNTH^{token[:8].upper()}",
        sex=sex,
        age=age,
        birth_date=birth_date,
        comorbidities=comorbidities,
        vignette=fill_vignette(recipe.vignette, values),
    )


def fill_vignette(template: str, values: dict[str, str | None]) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]``.

    Only bare names are allowed (no attribute access, indexing, conversion or
    format spec), so template text written by a user cannot reach into objects.
    """
    parts = []
    for literal, name in _vignette_fields(template):
        if name is not None and values.get(name) is None:
            raise ValueError(f"vignette placeholder {{{name}}} has no value here")
        if name is not None and _takes_an(values[name]):
            literal = _A_BEFORE.sub(lambda m: m.group(1) + "n" + m.group(2), literal)
        parts.append(literal)
        if name is not None:
            parts.append(values[name])
    return "".join(parts)


_A_BEFORE = re.compile(r"\b([Aa])(\s+)$")  # the article "a" right before a placeholder


def _takes_an(value: str) -> bool:
    """Whether "a" before ``value`` must be "an": a vowel sound, as in an 81-year-old, an 8-,
    11- or 18-year-old, an effusion (a word starting with u is left alone: a unilateral)."""
    number = re.match(r"\d+", value)
    if number:
        digits = number.group()
        return digits.startswith("8") or digits in ("11", "18")
    return value[:1].lower() in ("a", "e", "i", "o")


def study_timeline(recipe: PatientRecipe, *, start_date: date) -> list[tuple[date, float]]:
    """``recipe.timepoints`` studies as (date, severity), ``interval_days`` apart.

    Severity runs from ``severity_from`` at the first study to ``severity_to`` at
    the last along ``severity_curve``; one timepoint gives ``severity_from``.
    """
    steps = max(recipe.timepoints - 1, 1)
    curve = SEVERITY_CURVES[recipe.severity_curve]
    timeline = []
    for i in range(recipe.timepoints):
        fraction = float(curve(i / steps))
        severity = recipe.severity_from + (recipe.severity_to - recipe.severity_from) * fraction
        timeline.append((start_date + timedelta(days=i * recipe.interval_days), severity))
    return timeline


def conditions_for(
    patient: SyntheticPatientSpec,
    schema: ConditionSchema,
    finding: str,
    severity: float | Sequence[float],
) -> np.ndarray:
    """Condition vectors float32 [n, schema.dim], one per severity.

    Age is the patient's age at the first study for every timepoint: a
    progression series keeps the identity and age-related anatomy fixed and
    moves only the finding.
    """
    severities = np.atleast_1d(np.asarray(severity, dtype=np.float32))
    return schema.encode(finding, severities, float(patient.age), patient.sex)


def age_on(birth_date: date, day: date) -> int:
    """Whole years between ``birth_date`` and ``day``."""
    had_birthday = (day.month, day.day) >= (birth_date.month, birth_date.day)
    return day.year - birth_date.year - (0 if had_birthday else 1)


def _birth_date(age: int, on: date, rng: np.random.Generator) -> date:
    """A uniformly drawn birth date that makes the patient ``age`` on ``on``."""
    latest = _years_before(on, age)  # birthday on the day itself
    earliest = _years_before(on, age + 1) + timedelta(days=1)
    return earliest + timedelta(days=int(rng.integers(0, (latest - earliest).days + 1)))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def _vignette_fields(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder name or None) pairs; ValueError on a bad placeholder."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(f"vignette: {error} (use '{{{{' and '}}}}' for braces)") from None
    pairs = []
    for literal, name, format_spec, conversion in parsed:
        if name is not None and (name not in VIGNETTE_PLACEHOLDERS or format_spec or conversion):
            shown = name + (f"!{conversion}" if conversion else "")
            shown += f":{format_spec}" if format_spec else ""
            raise ValueError(
                f"vignette placeholder {{{shown}}} is not allowed; "
                f"use one of {sorted(VIGNETTE_PLACEHOLDERS)}"
            )
        pairs.append((literal, name))
    return pairs


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")


def _check_probability(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
