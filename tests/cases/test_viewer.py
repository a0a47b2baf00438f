"""The viewer's data for a case: studies in time order, image series by series number."""

import pytest
from django.urls import reverse

from cases.imaging.viewer import timepoint_label, viewer_data
from cases.models import Instance, Series, Study

pytestmark = pytest.mark.django_db

CONTRASTS = ((2, "T2-FLAIR"), (3, "T1c"))


def add_series(study: Study, number: int, description: str, *, images: int = 1) -> Series:
    series = Series.objects.create(
        study=study,
        series_uid=f"2.25.{study.pk}{number:03d}",
        modality="MR",
        series_number=number,
        description=description,
    )
    for index in range(images):
        Instance.objects.create(
            series=series,
            sop_instance_uid=f"2.25.{study.pk}{number:03d}{index:03d}",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
            instance_number=index + 1,
            file=f"cases/x/{study.pk}-{number}-{index}.dcm",
            size=1,
            seed=0,
            truncation=1.0,
            severity=0.0,
            latent_w=[],
        )
    return series


def test_a_generated_case_is_one_image_series_per_study_without_its_segmentations(
    make_cases, django_assert_num_queries
):
    case = make_cases(1)[0]
    studies = case.studies.prefetch_related("series__instances")
    with django_assert_num_queries(3):  # studies, their series, their instances
        data = viewer_data(studies)
    assert [s["label"] for s in data["studies"]] == [
        f"t{study.timepoint + 1} · {study.study_date:%Y-%m-%d} · severity {study.severity:.2f}"
        for study in case.studies.order_by("timepoint")
    ]
    for study, shown in zip(case.studies.order_by("timepoint"), data["studies"], strict=True):
        image = study.series.get(modality="MR").instances.get()
        assert shown["series"] == [
            {
                "key": "1",
                "label": image.series.description,
                "imageIds": [f"wadouri:{image.wado_uri}"],
            }
        ]


def test_contrasts_hang_by_series_number_and_missing_ones_are_left_out(make_cases):
    case = make_cases(1)[0]
    first, second, third = case.studies.order_by("timepoint")
    for study in (first, second, third):
        for number, description in reversed(CONTRASTS):
            if study == first and description == "T1c":
                continue  # not acquired at the first timepoint
            add_series(study, number, description, images=2 if study == third else 1)
    add_series(second, 9, "empty", images=0)

    data = viewer_data(case.studies.prefetch_related("series__instances"), label=timepoint_label)

    assert [s["label"] for s in data["studies"]] == ["t1", "t2", "t3"]
    assert [[x["key"] for x in s["series"]] for s in data["studies"]] == [
        ["1", "2"],
        ["1", "2", "3"],
        ["1", "2", "3"],
    ]
    flair = data["studies"][2]["series"][1]
    assert flair["label"] == "T2-FLAIR"
    expected = third.series.get(series_number=2).instances.order_by("instance_number")
    assert flair["imageIds"] == [f"wadouri:{i.wado_uri}" for i in expected]


def test_a_study_with_only_a_segmentation_is_not_shown(make_cases):
    case = make_cases(1)[0]
    last = case.studies.order_by("timepoint").last()
    last.series.exclude(modality="SEG").delete()
    data = viewer_data(case.studies.prefetch_related("series__instances"))
    assert len(data["studies"]) == case.studies.count() - 1


def test_case_and_review_pages_hand_the_viewer_every_series(login, expert, make_cases):
    case = make_cases(1, status="draft")[0]
    for study in case.studies.all():
        add_series(study, 2, "T2-FLAIR")
    client = login(expert)
    for url in (reverse("case-detail", args=[case.pk]), f"/edu/reviews/cases/{case.pk}/"):
        data = client.get(url).context["viewer_data"]
        assert [[x["label"] for x in s["series"]][1:] for s in data["studies"]] == [
            ["T2-FLAIR"]
        ] * 3
