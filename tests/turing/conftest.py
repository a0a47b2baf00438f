"""Fixtures of the Turing suites: a real pool, raters, and a built study."""

from __future__ import annotations

import pytest

from cases.models import ReferencePool
from tests.factories import UserFactory
from tests.turing.factories import make_reference_images
from turing.building import StudyPlan, build_study


@pytest.fixture
def pool(db, educator):
    pool = ReferencePool.objects.create(name="held-out MR", created_by=educator)
    make_reference_images(pool, 12)
    return pool


@pytest.fixture
def raters(db):
    return [UserFactory(role="expert") for _ in range(3)]


@pytest.fixture
def make_study(make_cases, pool, educator, raters):
    """``make_study(**plan_fields)``: a study of ``n_images`` (default 8) from two really
    generated approved cases (6 images) and the 12-image pool, read by three experts."""

    def _make(*, n_cases: int = 2, **fields):
        cases = make_cases(n_cases)
        plan = {
            "title": "Tiny brain Turing test",
            "pool": pool,
            "n_images": 8,
            "synthetic_ratio": 0.5,
            "raters": raters,
            "generator": cases[0].template_version.generator,
            "seed": 7,
            **fields,
        }
        return build_study(StudyPlan(**plan), created_by=educator)

    return _make
