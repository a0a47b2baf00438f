"""What the DICOM viewer (static/js/viewer.js) is given for a case: its studies, each with
its image series, each with the WADO-URI image ids of its instances.

Series of different studies hang in the same column when they share a key: the DICOM
Series Number, which a generator keeps per contrast (T1 = 1, T2-FLAIR = 2, ...) across the
timepoints of a case. Non-image series (segmentations, structured reports, key objects,
presentation states) are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypedDict

from cases.models import Study

NON_IMAGE_MODALITIES = frozenset({"SEG", "SR", "KO", "PR", "RTSTRUCT"})


class ViewerSeries(TypedDict):
    key: str
    label: str
    imageIds: list[str]


class ViewerStudy(TypedDict):
    label: str
    series: list[ViewerSeries]


class ViewerData(TypedDict):
    studies: list[ViewerStudy]


def study_label(study: Study) -> str:
    """The label a case page shows for a study: timepoint, date and severity."""
    return f"t{study.timepoint + 1} · {study.study_date:%Y-%m-%d} · severity {study.severity:.2f}"


def timepoint_label(study: Study) -> str:
    """A label that tells nothing but the timepoint."""
    return f"t{study.timepoint + 1}"


def viewer_data(
    studies: Iterable[Study], *, label: Callable[[Study], str] = study_label
) -> ViewerData:
    """The viewer's data for `studies` (in their order; series by series number).

    Pass studies with ``prefetch_related("series__instances")`` to read them in three queries.
    """
    shown: list[ViewerStudy] = []
    for study in studies:
        series_list: list[ViewerSeries] = []
        for series in sorted(study.series.all(), key=lambda s: s.series_number):
            if series.modality in NON_IMAGE_MODALITIES:
                continue
            instances = sorted(series.instances.all(), key=lambda i: i.instance_number)
            if not instances:
                continue
            series_list.append(
                {
                    "key": str(series.series_number),
                    "label": series.description,
                    "imageIds": [f"wadouri:{instance.wado_uri}" for instance in instances],
                }
            )
        if series_list:
            shown.append({"label": label(study), "series": series_list})
    return {"studies": shown}
