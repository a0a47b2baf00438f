"""Building a study, per-rater orders, responses, closing and flags."""

import pydicom
import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from cases.models import Operation, ReferencePool
from tests.turing.factories import make_reference_images
from turing.building import StudyPlan, build_study, launch_build
from turing.models import CaseFlag, Response, StudyImage, TuringStudy
from turing.tasks import build_study as build_study_task


def test_a_study_has_the_asked_images_at_the_asked_ratio_all_blinded(make_study):
    study = make_study(n_images=8, synthetic_ratio=0.25)
    sides = list(study.images.values_list("side", flat=True))
    assert sides.count("synthetic") == 2
    assert sides.count("real") == 6
    for image in study.images.all():
        ds = pydicom.dcmread(image.blinded.open("rb"))
        assert "SyntheticData" not in ds
        assert (ds.Rows, ds.Columns) == (study.image_size, study.image_size) == (32, 32)
        assert image.blinded_size == image.blinded.size
    assert len({image.blinded_size for image in study.images.all()}) == 1
    assert study.rater_set.count() == 3


def test_the_same_seed_draws_the_same_sources(make_study):
    first = make_study(n_cases=1, n_images=4)
    second = build_study(
        StudyPlan(
            title="again",
            pool=first.pool,
            n_images=4,
            synthetic_ratio=0.5,
            raters=[r.user for r in first.rater_set.all()],
            generator=first.generator,
            seed=first.seed,
        ),
        created_by=first.created_by,
    )

    def sources(study):
        return sorted(study.images.values_list("instance_id", "reference_id"), key=str)

    assert sources(first) == sources(second)
    assert set(first.images.values_list("token", flat=True)).isdisjoint(
        second.images.values_list("token", flat=True)
    )


def test_each_rater_has_a_stable_order_of_their_own(make_study):
    study = make_study()
    orders = [rater.order() for rater in study.rater_set.all()]
    assert all(sorted(order) == sorted(orders[0]) for order in orders)
    assert len({tuple(order) for order in orders}) == 3
    assert study.rater_set.first().order() == orders[0]


def test_plans_that_cannot_be_met_are_refused_with_a_reason(make_cases, pool, educator, raters):
    cases = make_cases(1)  # 3 synthetic images
    base = {"title": "t", "pool": pool, "synthetic_ratio": 0.5, "raters": raters}
    generator = cases[0].template_version.generator
    with pytest.raises(ValidationError, match="needs 5 synthetic images but only 3"):
        build_study(StudyPlan(n_images=10, generator=generator, **base), created_by=educator)
    with pytest.raises(ValidationError, match="either a generator or a set"):
        build_study(
            StudyPlan(n_images=4, generator=generator, cases=cases, **base), created_by=educator
        )
    empty = ReferencePool.objects.create(name="empty")
    with pytest.raises(ValidationError, match="real MR images but only 0"):
        build_study(
            StudyPlan(n_images=4, cases=cases, **{**base, "pool": empty}), created_by=educator
        )
    assert not StudyImage.objects.exists()


def test_an_unreadable_real_image_stops_the_build_and_writes_nothing(make_cases, educator, raters):
    cases = make_cases(1)
    broken = ReferencePool.objects.create(name="broken")
    image = make_reference_images(broken, 2)[0]
    image.file.save("reference/broken.dcm", ContentFile(b"junk"), save=True)
    plan = StudyPlan(
        title="t", pool=broken, n_images=4, synthetic_ratio=0.5, raters=raters, cases=cases
    )
    with pytest.raises(ValidationError, match="not a readable DICOM"):
        build_study(plan, created_by=educator)
    assert not StudyImage.objects.exists()


def test_a_response_is_one_per_image_and_time_adds_up(make_study):
    study = make_study()
    rater = study.rater_set.first()
    image = study.images.first()
    Response.record(rater=rater, image=image, time_ms=1000, called_synthetic=True, confidence=2)
    Response.record(rater=rater, image=image, time_ms=500, called_synthetic=False, confidence=5)
    response = Response.objects.get()
    assert (response.called_synthetic, response.confidence) == (False, 5)
    assert response.time_on_image_ms == 1500
    with pytest.raises(ValidationError):
        Response.record(rater=rater, image=image, time_ms=1, called_synthetic=True, confidence=6)
    study.close()
    with pytest.raises(ValidationError, match="closed"):
        Response.record(rater=rater, image=image, time_ms=1, called_synthetic=True, confidence=1)


def test_closing_flags_cases_most_raters_recognised_confidently(make_study):
    study = make_study()
    synthetic = list(study.images.filter(side="synthetic"))
    for n, rater in enumerate(study.rater_set.all()):
        for image in study.images.all():
            sure = image.pk == synthetic[0].pk and n < 2  # two of three raters are sure
            Response.record(
                rater=rater,
                image=image,
                time_ms=100,
                called_synthetic=sure or (image.is_synthetic and n == 2),
                confidence=5 if sure else 2,
            )
    study.close()
    flag = CaseFlag.objects.get()
    assert flag.case == synthetic[0].instance.series.study.patient
    assert flag.images_flagged == 1
    study.close()  # closing twice changes nothing
    assert CaseFlag.objects.count() == 1


def _queued_build(make_cases, pool, raters, educator):
    plan = StudyPlan(
        title="queued",
        pool=pool,
        n_images=4,
        synthetic_ratio=0.5,
        raters=raters,
        cases=make_cases(1),
    )
    return launch_build(plan, user=educator)


def _blinded_files(media_root) -> set:
    return set((media_root / "turing").rglob("*.dcm"))


def test_a_queued_build_reports_progress_and_links_the_study(
    make_cases, pool, raters, educator, monkeypatch
):
    operation = _queued_build(make_cases, pool, raters, educator)
    assert operation.params["plan"]["seed"] is not None  # fixed when queued: a rerun draws alike
    seen = []
    record = Operation.record_progress

    def watch(op, done, total=None):
        seen.append(done)
        record(op, done, total)

    monkeypatch.setattr(Operation, "record_progress", watch)
    build_study_task(operation_pk=operation.pk)
    operation.refresh_from_db()
    study = TuringStudy.objects.get()
    assert seen == [1, 2, 3, 4]
    assert (operation.status, operation.done, operation.total) == ("succeeded", 4, 4)
    assert operation.result["link"] == study.get_absolute_url()
    build_study_task(operation_pk=operation.pk)  # a repeated delivery
    assert TuringStudy.objects.count() == 1


def test_a_build_another_delivery_finished_first_keeps_nothing(
    make_cases, pool, raters, educator, media_root, monkeypatch
):
    operation = _queued_build(make_cases, pool, raters, educator)
    before = _blinded_files(media_root)

    def finished_elsewhere(op, done, total=None):
        Operation.objects.filter(pk=op.pk).update(status="succeeded")

    monkeypatch.setattr(Operation, "record_progress", finished_elsewhere)
    build_study_task(operation_pk=operation.pk)
    assert not TuringStudy.objects.exists()
    assert not StudyImage.objects.exists()
    assert _blinded_files(media_root) == before


def test_a_failed_build_marks_the_operation_failed_with_its_reason(
    make_cases, educator, raters, media_root
):
    broken = ReferencePool.objects.create(name="broken")
    image = make_reference_images(broken, 2)[0]
    image.file.save("reference/broken.dcm", ContentFile(b"junk"), save=True)
    operation = _queued_build(make_cases, broken, raters, educator)
    before = _blinded_files(media_root)
    build_study_task(operation_pk=operation.pk)
    operation.refresh_from_db()
    assert operation.status == "failed"
    assert "not a readable DICOM" in operation.error
    assert not TuringStudy.objects.exists()
    assert _blinded_files(media_root) == before
