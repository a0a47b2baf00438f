"""DICOMweb against a live server, driven by a real client (dicomweb-client)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, RLELossless
from requests import HTTPError

from cases.models import AccessToken, Instance, ReferencePool
from cases.reference.dicom_import import import_files
from tests.cases import dicom_samples as samples


def client_for(live_server, user, path: str = "/dicomweb") -> DICOMwebClient:
    key = AccessToken.issue(user)
    return DICOMwebClient(
        url=f"{live_server.url}{path}", headers={"Authorization": f"Bearer {key}"}
    )


@pytest.fixture
def case(transactional_db, make_cases):
    return make_cases(1)[0]


@pytest.fixture
def pool(transactional_db, educator):
    pool = ReferencePool.objects.create(name="real brains")
    files = [
        ("rle.dcm", samples.encoded(RLELossless, samples.pixels(frames=2))),
        ("jls.dcm", samples.encoded(JPEGLSLossless)),
    ]
    report = import_files(pool, files, educator)
    assert len(report.imported) == 2
    return pool


def first_image(case) -> Instance:
    return Instance.objects.filter(series__study__patient=case).exclude(series__modality="SEG")[0]


def test_search_studies_series_and_instances(live_server, case, expert):
    web = client_for(live_server, expert)
    studies = web.search_for_studies(search_filters={"PatientID": case.patient_id})
    assert sorted(s["0020000D"]["Value"][0] for s in studies) == sorted(
        case.studies.values_list("study_uid", flat=True)
    )
    study = case.studies.order_by("timepoint")[0]
    date = study.study_date.strftime("%Y%m%d")
    dated = web.search_for_studies(
        search_filters={"PatientID": case.patient_id, "StudyDate": f"{date}-{date}"}
    )
    assert [s["0020000D"]["Value"][0] for s in dated] == [study.study_uid]
    assert web.search_for_studies(search_filters={"ModalitiesInStudy": "CT"}) == []
    paged = web.search_for_studies(limit=1, offset=1)
    assert len(paged) == 1
    assert paged[0] == studies[1]

    series = web.search_for_series(study.study_uid)
    modalities = sorted(s["00080060"]["Value"][0] for s in series)
    assert modalities == sorted(study.series.values_list("modality", flat=True))
    image = study.series.exclude(modality="SEG").get()
    found = web.search_for_instances(
        study.study_uid, image.series_uid, fields=["PatientSex", "Rows"]
    )
    assert found[0]["00080018"]["Value"] == [image.instances.get().sop_instance_uid]
    assert found[0]["00100040"]["Value"] == [case.sex]
    assert found[0]["00280010"]["Value"][0] > 0


def test_retrieve_instance_metadata_frames_and_rendered(live_server, case, expert):
    web = client_for(live_server, expert)
    instance = first_image(case)
    study, series = instance.series.study.study_uid, instance.series.series_uid
    with instance.file.open("rb") as fh:
        original = dcmread(fh)

    ds = web.retrieve_instance(study, series, instance.sop_instance_uid)
    assert ds.SOPInstanceUID == instance.sop_instance_uid
    np.testing.assert_array_equal(ds.pixel_array, original.pixel_array)

    meta = web.retrieve_instance_metadata(study, series, instance.sop_instance_uid)
    assert meta["00100020"]["Value"] == [case.patient_id]
    assert "7FE00010" not in meta

    (frame,) = web.retrieve_instance_frames(study, series, instance.sop_instance_uid, [1])
    assert frame == original.PixelData

    png = web.retrieve_instance_rendered(
        study, series, instance.sop_instance_uid, media_types=("image/png",)
    )
    assert Image.open(io.BytesIO(png)).size == (original.Columns, original.Rows)

    whole = web.retrieve_study(study)
    assert {d.SOPInstanceUID for d in whole} == set(
        Instance.objects.filter(series__study__study_uid=study).values_list(
            "sop_instance_uid", flat=True
        )
    )


def test_compressed_reference_images_as_stored_or_transcoded(live_server, pool, expert):
    web = client_for(live_server, expert)
    image = pool.images.get(transfer_syntax_uid=RLELossless)
    ids = (image.study_uid, image.series_uid, image.sop_instance_uid)

    as_stored = web.retrieve_instance(*ids)  # the client asks for transfer-syntax=*
    assert as_stored.file_meta.TransferSyntaxUID == RLELossless
    explicit = web.retrieve_instance(
        *ids, media_types=(("application/dicom", ExplicitVRLittleEndian),)
    )
    assert explicit.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    np.testing.assert_array_equal(explicit.pixel_array, samples.pixels(frames=2))

    frames = web.retrieve_instance_frames(*ids, [2])
    expected = samples.pixels(frames=2)[1]
    np.testing.assert_array_equal(np.frombuffer(frames[0], "<u2").reshape(32, 32), expected)


def test_store_into_a_pool_then_find_and_retrieve(live_server, pool, educator):
    web = client_for(live_server, educator, f"/dicomweb/pools/{pool.pk}")
    good = samples.dataset()
    no_pixels = samples.dataset()
    del no_pixels.PixelData

    reply = web.store_instances([good, no_pixels])

    (stored,) = reply.ReferencedSOPSequence
    (failed,) = reply.FailedSOPSequence
    assert failed.ReferencedSOPInstanceUID == no_pixels.SOPInstanceUID
    assert failed.FailureReason == 0xC000
    assert stored.WarningReason == 0xB000  # de-identified on the way in
    found = web.search_for_instances(
        search_filters={"SOPInstanceUID": stored.ReferencedSOPInstanceUID}
    )
    assert len(found) == 1
    study_uid = found[0]["0020000D"]["Value"][0]
    series_uid = found[0]["0020000E"]["Value"][0]
    back = web.retrieve_instance(study_uid, series_uid, stored.ReferencedSOPInstanceUID)
    assert back.PatientID != good.PatientID
    assert back.PatientIdentityRemoved == "YES"

    with pytest.raises(HTTPError) as exc:  # the same image again: nothing new stored
        web.store_instances([good])
    assert exc.value.response.status_code == 409
    assert "already in pool" in exc.value.response.headers["Warning"]
