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


def test_a_multi_contrast_cohort_gives_each_contrast_of_a_scan_with_its_noise(db):
    call_command(
        "load_reference_pool",
        cohort="brain-mri",
        subjects=10,
        seed=1,
        limit=6,
        stdout=io.StringIO(),
    )
    images = list(ReferencePool.objects.get().images.order_by("pk"))
    assert [image.source_name.rsplit("-", 1)[1] for image in images] == [
        "T1.dcm", "FLAIR.dcm", "T1c.dcm", "T1.dcm", "FLAIR.dcm", "T1c.dcm"
    ]  # fmt: skip
    pixels = [pydicom.dcmread(image.file.open("rb")).pixel_array for image in images]
    assert pixels[0].shape == (256, 256)
    background = pixels[0][:8, :8].astype(float)  # air outside the head: noise, not zeros
    assert background.std() > 0
    assert not (pixels[0] == pixels[1]).all()  # T1 and FLAIR are different images
