"""load_reference_pool: the demo's real side from a held-out simulated cohort."""

import io

import pydicom
from django.core.management import call_command

from cases.models import ReferenceImage, ReferencePool
from turing.building import StudyPlan, build_study


def test_the_held_out_cohort_becomes_a_pool_marked_simulated(db, make_cases, educator, expert):
    out = io.StringIO()
    call_command("load_reference_pool", resolution=32, subjects=10, seed=0, stdout=out)
    pool = ReferencePool.objects.get()
    images = list(pool.images.all())
    assert len(images) == 10
    assert "10 image(s) added" in out.getvalue()
    assert {image.origin for image in images} == {ReferenceImage.Origin.COHORT}
    assert "simulated" in pool.name
    assert "Simulated" in pool.description
    ds = pydicom.dcmread(images[0].file.open("rb"))
    assert "Simulated cohort image" in ds.ImageComments
    assert (ds.Rows, ds.Columns, ds.Modality) == (32, 32, "MR")
    for image in images:  # a retrieval's Content-Length is the stored size
        assert image.size == image.file.size > 1000

    call_command("load_reference_pool", resolution=32, subjects=10, seed=0, stdout=io.StringIO())
    assert pool.images.count() == 10  # a second run adds nothing

    cases = make_cases(2)
    plan = StudyPlan(
        title="demo", pool=pool, n_images=10, synthetic_ratio=0.5, raters=[expert], cases=cases
    )
    study = build_study(plan, created_by=educator)
    assert study.images.filter(side="real").count() == 5
