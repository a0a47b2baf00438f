"""Teaching-file export (IHE TCE) and its import back into a reference pool with its key.

A really generated three-timepoint case is exported; the objects are read back by pydicom and
highdicom, validated by dciodvfy, and imported into a pool."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pydicom import dcmread
from pydicom.fileset import FileSet

from cases.imaging.teaching_file import (
    KOS_SOP_CLASS,
    SR_SOP_CLASS,
    export_teaching_file,
    long_axis_mm,
)
from cases.models import LesionGroundTruth, ReferenceImage, ReferencePool
from cases.reference.teaching_file_import import import_teaching_file, read_key
from tests.genworker.test_dicom import UNKNOWN_SYNTHETIC_DATA

PROGRESSION = {
    "timepoints": 3,
    "severity_from": 0.2,
    "severity_to": 0.9,
    "interval_days": 90,
    "method": "condition",
}


@pytest.fixture
def case(make_cases):
    return make_cases(1, progression=PROGRESSION, diagnosis="Glioblastoma")[0]


@pytest.fixture
def exported(case, tmp_path) -> Path:
    folder = tmp_path / "teaching-file"
    with zipfile.ZipFile(io.BytesIO(export_teaching_file(case))) as archive:
        archive.extractall(folder)
    return folder


def _objects(folder: Path) -> dict[str, list]:
    by_modality: dict[str, list] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "DICOMDIR":
            ds = dcmread(path)
            by_modality.setdefault(str(ds.Modality), []).append(ds)
    return by_modality


def test_the_export_holds_images_segs_a_key_and_a_for_teaching_manifest(case, exported):
    objects = _objects(exported)
    images, segs = objects["MR"], objects["SEG"]
    (sr,), (kos,) = objects["SR"], objects["KO"]
    assert len(images) == 3
    assert len(segs) == LesionGroundTruth.objects.filter(image__series__study__patient=case).count()
    assert FileSet(exported / "DICOMDIR").find(SOPClassUID=KOS_SOP_CLASS)
    # The manifest: titled "For Teaching" (DCM 113004), selecting every image and the SR,
    # with the evidence of every study it references (one per timepoint).
    title = kos.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == (
        "113004",
        "DCM",
        "For Teaching",
    )
    selected = {
        str(ref.ReferencedSOPInstanceUID)
        for item in kos.ContentSequence
        for ref in item.get("ReferencedSOPSequence", [])
    }
    assert selected == {str(ds.SOPInstanceUID) for ds in [*images, sr]}
    evidence_studies = {
        str(s.StudyInstanceUID) for s in kos.CurrentRequestedProcedureEvidenceSequence
    }
    assert evidence_studies == {str(ds.StudyInstanceUID) for ds in images}
    description = next(i.TextValue for i in kos.ContentSequence if i.ValueType == "TEXT")
    assert "Diagnosis: Glioblastoma" in description
    assert case.history.strip() in description
    for ds in (sr, kos):
        assert ds.SyntheticData == "YES"
        assert ds.PatientID == images[0].PatientID
        assert ds.StudyInstanceUID == images[-1].StudyInstanceUID  # the last timepoint's study
    assert sr.SOPClassUID == SR_SOP_CLASS


def test_the_sr_key_matches_the_case(case, exported):
    (sr,) = _objects(exported)["SR"]
    keys = read_key(sr)
    studies = {s.timepoint: s for s in case.studies.all()}
    for instance in LesionGroundTruth.objects.filter(
        image__series__study__patient=case
    ).select_related("image__series__study", "segmentation"):
        key = keys[instance.image.sop_instance_uid]
        study = instance.image.series.study
        assert key.timepoint == study.timepoint
        assert key.severity == pytest.approx(studies[study.timepoint].severity, abs=1e-6)
        assert (key.finding, key.diagnosis) == ("glioma", "Glioblastoma")
        with instance.image.file.open("rb") as fh:
            image = dcmread(fh)
        spacing = [float(v) for v in image.PixelSpacing]
        if instance.area_pixels:
            assert key.area_mm2 == pytest.approx(instance.area_pixels * spacing[0] * spacing[1])
        else:
            assert key.area_mm2 is None
    assert len(keys) == 3


def test_long_axis_is_the_farthest_pair_of_pixel_centres():
    mask = np.zeros((20, 20), bool)
    mask[2:5, 3:11] = True  # rows 2-4, columns 3-10
    brute = max(
        np.hypot((r1 - r2) * 0.5, (c1 - c2) * 2.0)
        for r1, c1 in np.argwhere(mask)
        for r2, c2 in np.argwhere(mask)
    )
    assert long_axis_mm(mask, (0.5, 2.0)) == pytest.approx(brute)
    line = np.zeros((5, 5), bool)
    line[2, :] = True  # collinear: no hull, still measured
    assert long_axis_mm(line, (1.0, 1.0)) == pytest.approx(4.0)
    assert long_axis_mm(np.zeros((3, 3), bool), (1.0, 1.0)) == 0.0


@pytest.fixture
def dciodvfy():
    path = shutil.which("dciodvfy")
    if path is None:
        if os.environ.get("GANTRY_REQUIRE_DICOM3TOOLS") == "1":
            raise pytest.UsageError("dciodvfy is absent and GANTRY_REQUIRE_DICOM3TOOLS=1")
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    return path


def test_sr_and_manifest_pass_dciodvfy(exported, dciodvfy):
    checked = 0
    for path in sorted(exported.rglob("*")):
        if not path.is_file() or path.name == "DICOMDIR":
            continue
        if dcmread(path, stop_before_pixels=True).Modality not in ("SR", "KO"):
            continue
        report = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True).stderr
        problems = [
            line
            for line in report.splitlines()
            if line.startswith(("Error", "Warning"))
            and UNKNOWN_SYNTHETIC_DATA not in line
            # the old release knows no Synthetic Data, so calls the IOD extended
            and "Standard Extended SOP Class" not in line
            and "not present in standard DICOM IOD" not in line
            # the local coding scheme, declared in the Coding Scheme Identification Sequence
            and "Unrecognized defined term <99GANTRY>" not in line
        ]
        assert problems == [], f"{path}: {report}"
        checked += 1
    assert checked == 2


def _zip_upload(data: bytes) -> list[tuple[str, bytes]]:
    return [("case-teaching-file.zip", data)]


def test_a_teaching_file_imports_into_a_synthetic_pool_with_its_key(case, educator):
    pool = ReferencePool.objects.create(name="teaching", holds_synthetic=True)
    report = import_teaching_file(pool, _zip_upload(export_teaching_file(case)), educator)
    assert report.refused == []
    assert len(report.imported) == 3  # the images, not the SEGs, SR or manifest
    rows = list(pool.images.order_by("teaching_key__timepoint"))
    assert [r.origin for r in rows] == [ReferenceImage.Origin.TEACHING_FILE] * 3
    assert [r.teaching_key["timepoint"] for r in rows] == [0, 1, 2]
    severities = [s.severity for s in case.studies.order_by("timepoint")]
    assert [r.severity for r in rows] == pytest.approx(severities, abs=1e-6)
    assert {r.finding for r in rows} == {"glioma"}
    # De-identified on import like any image: new UIDs, a pseudonymous patient.
    sources = set(case.studies.values_list("series__instances__sop_instance_uid", flat=True))
    assert not {r.sop_instance_uid for r in rows} & sources
    again = import_teaching_file(pool, _zip_upload(export_teaching_file(case)), educator)
    assert (len(again.imported), len(again.duplicates)) == (0, 3)


def test_a_synthetic_teaching_file_is_refused_by_a_real_pool(case, educator):
    pool = ReferencePool.objects.create(name="real")
    report = import_teaching_file(pool, _zip_upload(export_teaching_file(case)), educator)
    assert report.imported == []
    (name, reason), *_ = report.refused
    assert name == "teaching file"
    assert "Synthetic Data = YES" in reason
    assert not pool.images.exists()


def test_a_zip_without_a_manifest_is_no_teaching_file(case, educator):
    from cases.imaging.export import export_zip

    pool = ReferencePool.objects.create(name="teaching", holds_synthetic=True)
    report = import_teaching_file(pool, _zip_upload(export_zip(case)), educator)
    assert report.imported == []
    assert "no Key Object Selection document titled 'For Teaching'" in report.refused[0][1]


def test_a_real_pool_refuses_a_synthetic_image_imported_plainly(case, educator):
    from cases.reference.dicom_import import import_files

    image = case.studies.first().series.exclude(modality="SEG").first().instances.first()
    pool = ReferencePool.objects.create(name="real")
    report = import_files(pool, [("image.dcm", image.file.open("rb").read())], educator)
    assert report.imported == []
    assert "Synthetic Data = YES" in report.refused[0][1]


def test_a_pool_of_teaching_files_is_never_a_turing_studys_real_side(case, educator, expert):
    from turing.building import StudyPlan, build_study

    pool = ReferencePool.objects.create(name="teaching", holds_synthetic=True)
    plan = StudyPlan("t", pool, 2, 0.5, [expert], cases=[case])
    with pytest.raises(ValidationError, match="synthetic teaching files"):
        build_study(plan, created_by=educator)


def test_the_pages_export_and_import_a_teaching_file(
    login, case, educator, trainee, task_queue, django_capture_on_commit_callbacks
):
    client = login(educator)
    page = client.get(reverse("case-export", args=[case.pk])).content.decode()
    assert reverse("case-teaching-file", args=[case.pk]) in page
    response = client.get(reverse("case-teaching-file", args=[case.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    client.post(
        reverse("reference-pool-list"),
        {"name": "Teaching files", "description": "", "holds_synthetic": "on"},
    )
    pool = ReferencePool.objects.get(name="Teaching files")
    assert pool.holds_synthetic
    upload = io.BytesIO(response.content)
    upload.name = "teaching.zip"
    with django_capture_on_commit_callbacks(execute=True):
        reply = client.post(
            reverse("reference-pool", args=[pool.pk]), {"files": upload, "kind": "teaching_file"}
        )
    assert task_queue.run() == 1
    assert "3 imported" in client.get(reply["Location"]).content.decode()
    page = client.get(reverse("reference-pool", args=[pool.pk])).content.decode()
    assert "Glioblastoma, timepoint 2" in page
    client.logout()
    assert login(trainee).get(reverse("case-teaching-file", args=[case.pk])).status_code == 403
