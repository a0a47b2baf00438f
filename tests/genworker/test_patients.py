import itertools
import json
from datetime import date, timedelta

import numpy as np
import pytest

from genworker.conditions import ConditionSchema
from genworker.patients import (
    PatientRecipe,
    age_on,
    conditions_for,
    draw_patient,
    fill_vignette,
    study_timeline,
)

VIGNETTE = (
    "A {age}-year-old {sex_word} with {comorbidities}; {pronoun} is followed for {finding} "
    "with {timepoints} studies {interval_days} days apart. Braces: {{literal}}."
)


def recipe(**overrides):
    values = {
        "age_min": 40,
        "age_max": 70,
        "sex_mix": 0.3,
        "comorbidities": {"hypertension": 0.5, "diabetes": 0.2},
        "interval_days": 60,
        "timepoints": 5,
        "severity_from": 0.2,
        "severity_to": 0.8,
        "vignette": VIGNETTE,
    }
    return PatientRecipe(**{**values, **overrides})


def draw(seed, r=None, start=date(2024, 3, 1)):
    return draw_patient(
        r or recipe(), np.random.default_rng(seed), start_date=start, finding="glioma"
    )


def test_a_seed_gives_the_same_patient_and_another_seed_a_different_one():
    assert draw(7) == draw(7)
    assert draw(7).patient_id != draw(8).patient_id


def test_patients_respect_the_recipe_over_many_draws():
    patients = [draw(seed) for seed in range(2000)]
    ages = np.array([p.age for p in patients])
    assert ages.min() >= 40
    assert ages.max() <= 70
    assert ages.min() == 40
    assert ages.max() == 70
    male = np.mean([p.sex == "M" for p in patients])
    assert abs(male - 0.3) < 0.04  # 4 standard errors at n = 2000
    hypertension = np.mean(["hypertension" in p.comorbidities for p in patients])
    diabetes = np.mean(["diabetes" in p.comorbidities for p in patients])
    assert abs(hypertension - 0.5) < 0.05
    assert abs(diabetes - 0.2) < 0.04


@pytest.mark.parametrize("start", [date(2024, 3, 1), date(2024, 2, 29), date(2023, 12, 31)])
def test_birth_date_gives_the_drawn_age_on_the_first_study(start):
    for seed in range(300):
        patient = draw(seed, start=start)
        assert age_on(patient.birth_date, start) == patient.age


def test_names_and_ids_are_obviously_synthetic():
    patient = draw(3)
    assert patient.name.startswith("SYNTH^")
    assert patient.patient_id.startswith("SYNTH-")
    assert len({draw(seed).patient_id for seed in range(200)}) == 200


def test_vignette_is_filled_from_the_patient():
    patient = draw(11, recipe(comorbidities={"asthma": 1.0}, sex_mix=1.0))
    assert patient.vignette == (
        f"A {patient.age}-year-old man with asthma; he is followed for glioma "
        "with 5 studies 60 days apart. Braces: {literal}."
    )
    healthy = draw(11, recipe(comorbidities={"asthma": 0.0}, sex_mix=0.0))
    assert "woman with no known comorbidities; she" in healthy.vignette


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("Age {age}, weight {weight}", "weight"),
        ("{age.__class__}", "age.__class__"),
        ("{finding!r}", "finding!r"),
        ("{age:>10}", "age:>10"),
        ("{}", "{}"),
    ],
)
def test_unknown_or_unsafe_placeholders_raise_a_value_error_naming_them(template, named):
    with pytest.raises(ValueError, match="placeholder") as error:
        recipe(vignette=template)
    assert named in str(error.value)


def test_unbalanced_braces_raise_a_value_error():
    with pytest.raises(ValueError, match="vignette"):
        recipe(vignette="a { b")


def test_a_vignette_naming_the_finding_needs_one():
    with pytest.raises(ValueError, match="finding"):
        draw_patient(recipe(), np.random.default_rng(0), start_date=date(2024, 1, 1))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"age_min": 80, "age_max": 70}, "age_min"),
        ({"age_min": -1}, "age_min"),
        ({"age_max": 300}, "age_max"),
        ({"age_min": 40.5}, "age_min"),
        ({"sex_mix": 1.5}, "sex_mix"),
        ({"comorbidities": {"asthma": -0.1}}, "asthma"),
        ({"comorbidities": {"": 0.5}}, "comorbidities"),
        ({"interval_days": 0}, "interval_days"),
        ({"timepoints": 0}, "timepoints"),
        ({"severity_from": 2.0}, "severity_from"),
        ({"severity_to": float("nan")}, "severity_to"),
        ({"severity_curve": "wobbly"}, "severity_curve"),
    ],
)
def test_bad_recipes_raise_value_errors_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        recipe(**overrides)


def test_timeline_is_spaced_by_the_interval_and_runs_from_to():
    timeline = study_timeline(recipe(), start_date=date(2024, 1, 30))
    dates = [day for day, _ in timeline]
    severities = [severity for _, severity in timeline]
    assert dates[0] == date(2024, 1, 30)
    assert all(b - a == timedelta(days=60) for a, b in itertools.pairwise(dates))
    assert severities == pytest.approx([0.2, 0.35, 0.5, 0.65, 0.8])


def test_timeline_follows_the_recipe_curve_and_handles_one_timepoint():
    accelerating = study_timeline(recipe(severity_curve="accelerating"), start_date=date.today())
    steps = np.diff([severity for _, severity in accelerating])
    assert np.all(steps > 0)
    assert np.all(np.diff(steps) > 0)
    assert accelerating[-1][1] == pytest.approx(0.8)
    single = study_timeline(recipe(timepoints=1), start_date=date(2024, 5, 5))
    assert single == [(date(2024, 5, 5), pytest.approx(0.2))]
    regressing = study_timeline(recipe(severity_from=0.9, severity_to=0.1), start_date=date.today())
    assert regressing[0][1] == pytest.approx(0.9)
    assert regressing[-1][1] == pytest.approx(0.1)


def test_conditions_carry_the_patients_demographics():
    schema = ConditionSchema(findings=("normal", "glioma"))
    patient = draw(5, recipe(sex_mix=1.0))
    conditions = conditions_for(patient, schema, "glioma", [0.2, 0.5])
    expected = schema.encode("glioma", np.array([0.2, 0.5]), float(patient.age), "M")
    assert conditions.shape == (2, schema.dim)
    np.testing.assert_array_equal(conditions, expected)
    with pytest.raises(ValueError, match="nodule"):
        conditions_for(patient, schema, "nodule", 0.5)


def test_recipe_and_patient_round_trip_through_json():
    original = recipe(severity_curve="decelerating")
    assert PatientRecipe.from_dict(json.loads(json.dumps(original.to_dict()))) == original
    patient = json.loads(json.dumps(draw(2).to_dict()))
    assert patient["birth_date"] == draw(2).birth_date.isoformat()
    with pytest.raises(ValueError, match="colour"):
        PatientRecipe.from_dict({**original.to_dict(), "colour": "blue"})


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("81", "An 81-year-old man; an 81"),
        ("8", "An 8-year-old man; an 8"),
        ("18", "An 18-year-old man; an 18"),
        ("11", "An 11-year-old man; an 11"),
        ("45", "A 45-year-old man; a 45"),
        ("110", "A 110-year-old man; a 110"),
    ],
)
def test_the_article_before_an_age_agrees_with_it(value, text):
    assert fill_vignette("A {age}-year-old man; a {age}", {"age": value}) == text
