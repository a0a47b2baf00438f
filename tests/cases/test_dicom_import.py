"""Importing real DICOM: every transfer syntax, de-identification, duplicates, zips, and
broken files refused one by one with a reason while the rest are kept."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from pydicom import dcmread
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless

from cases.models import ReferenceImage, ReferencePool
from cases.reference import dicom_import
from cases.reference.dicom_import import import_files
from tests.cases import dicom_samples as samples


@pytest.fixture
def pool(db):
    return ReferencePool.objects.create(name="chest real")


def stored(image: ReferenceImage):
    with image.file.open("rb") as fh:
        return dcmread(fh)


def media_files(media_root: Path) -> set[Path]:
    """Files under the (session-wide) media root's reference folder."""
    folder = media_root / "reference"
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


@pytest.mark.parametrize("syntax", list(samples.LOSSLESS.values()), ids=list(samples.LOSSLESS))
def test_lossless_syntaxes_import_with_identical_pixels(pool, educator, syntax):
    report = import_files(pool, [("image.dcm", samples.encoded(syntax))], educator)

    assert report.refused == []
    assert report.duplicates == []
    (image,) = report.imported
    ds = stored(image)
    assert image.transfer_syntax_uid == syntax == ds.file_meta.TransferSyntaxUID
    assert (image.rows, image.columns, image.frames) == (32, 32, 1)
    np.testing.assert_array_equal(ds.pixel_array, samples.pixels())


def test_jpeg_baseline_imports_within_lossy_error(pool, educator):
    original = samples.pixels(bits=8)
    report = import_files(
        pool, [("lossy.dcm", samples.encoded(JPEGBaseline8Bit, original))], educator
    )

    (image,) = report.imported
    assert image.transfer_syntax_uid == JPEGBaseline8Bit
    error = np.abs(stored(image).pixel_array.astype(int) - original.astype(int))
    assert error.mean() < 2


def test_multi_frame_rle_keeps_every_frame(pool, educator):
    original = samples.pixels(frames=3)
    report = import_files(pool, [("cine.dcm", samples.encoded(RLELossless, original))], educator)

    (image,) = report.imported
    assert image.frames == 3
    np.testing.assert_array_equal(stored(image).pixel_array, original)


def test_identifiers_dates_private_tags_and_uids_are_replaced(pool, educator):
    source = samples.dataset()
    report = import_files(pool, [("a.dcm", samples.to_bytes(source))], educator)

    (image,) = report.imported
    ds = stored(image)
    assert str(ds.PatientName) != samples.PATIENT_NAME
    assert ds.PatientID != samples.PATIENT_ID
    assert ds.PatientID == image.patient_id
    assert ds.PatientBirthDate != samples.BIRTH_DATE
    assert ds.StudyDate != samples.STUDY_DATE
    assert ds.ReferringPhysicianName == ""
    assert ds.AccessionNumber == ""
    assert ds.StationName == ds.InstitutionName == ""  # X/Z/D: kept empty
    assert not any(elem.tag.is_private for elem in ds)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert ds[keyword].value != source[keyword].value
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == image.sop_instance_uid
    assert ds.PatientIdentityRemoved == "YES"
    record = image.deidentification
    assert record["attributes"]["PatientName"] == "replaced by pseudonym"
    assert record["attributes"]["StudyDate"] == "shifted"
    assert record["private_tags_removed"] == 2
    assert record["uids_remapped"] >= 4
    assert record["attributes"]["StationName"] == "emptied"
    assert samples.PATIENT_ID not in str(record)
    assert samples.PATIENT_NAME not in str(record)


def test_one_patient_keeps_one_pseudonym_study_and_date_intervals(pool, educator):
    first = samples.dataset()
    second = samples.dataset(study_uid=first.StudyInstanceUID, series_uid=first.SeriesInstanceUID)
    second.StudyDate = "20240301"  # 44 days later
    report = import_files(
        pool, [("1.dcm", samples.to_bytes(first)), ("2.dcm", samples.to_bytes(second))], educator
    )

    a, b = report.imported
    assert a.patient_id == b.patient_id
    assert a.study_uid == b.study_uid
    assert (b.study_date - a.study_date).days == 44
    assert a.sop_instance_uid != b.sop_instance_uid


def test_broken_files_are_refused_with_reasons_and_the_rest_kept(pool, educator, media_root):
    files = [
        ("good-1.dcm", samples.encoded(RLELossless)),
        ("truncated.dcm", samples.truncated()),
        ("no-pixels.dcm", samples.no_pixel_data()),
        ("wrong-vr.dcm", samples.wrong_vr()),
        ("huge.dcm", samples.huge_length()),
        ("report.pdf", samples.not_dicom()),
        ("empty.dcm", b""),
        ("good-2.dcm", samples.to_bytes(samples.dataset())),
    ]
    before = media_files(media_root)
    report = import_files(pool, files, educator)

    assert [image.source_name for image in report.imported] == ["good-1.dcm", "good-2.dcm"]
    reasons = dict(report.refused)
    assert "truncated" in reasons["truncated.dcm"]
    assert "no pixel data" in reasons["no-pixels.dcm"]
    assert "wrong VR" in reasons["wrong-vr.dcm"]
    assert "Rows" in reasons["wrong-vr.dcm"]
    assert "declares a length of 4294967280" in reasons["huge.dcm"]
    assert "not a DICOM file" in reasons["report.pdf"]
    assert reasons["empty.dcm"] == "empty file"
    assert ReferenceImage.objects.count() == 2
    assert media_files(media_root) - before == {
        media_root / image.file.name for image in report.imported
    }


def test_duplicates_by_sop_instance_uid_are_reported_not_stored(pool, educator):
    data = samples.to_bytes(samples.dataset())
    first = import_files(pool, [("a.dcm", data)], educator)
    again = import_files(pool, [("a-again.dcm", data), ("a-third.dcm", data)], educator)

    assert len(first.imported) == 1
    assert again.imported == []
    assert again.duplicates == ["a-again.dcm", "a-third.dcm"]
    other_pool = ReferencePool.objects.create(name="other")
    assert len(import_files(other_pool, [("a.dcm", data)], educator).imported) == 1


def test_zip_archives_are_expanded_member_by_member(pool, educator):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("study/", "")
        archive.writestr("study/1.dcm", samples.to_bytes(samples.dataset()))
        archive.writestr("study/2.dcm", samples.encoded(RLELossless))
        archive.writestr("study/notes.txt", b"not dicom")
    report = import_files(pool, [("upload.zip", buffer.getvalue())], educator)

    assert sorted(i.source_name for i in report.imported) == [
        "upload.zip/study/1.dcm",
        "upload.zip/study/2.dcm",
    ]
    assert [name for name, _ in report.refused] == ["upload.zip/study/notes.txt"]


def test_a_corrupt_zip_is_refused(pool, educator):
    report = import_files(pool, [("broken.zip", b"PK\x03\x04 not really")], educator)
    assert report.imported == []
    assert "zip" in report.refused[0][1]


def test_file_and_row_are_stored_together_or_not_at_all(pool, educator, media_root, monkeypatch):
    def fail(**_kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(ReferenceImage.objects, "create", fail)
    before = media_files(media_root)
    with pytest.raises(RuntimeError):
        import_files(pool, [("a.dcm", samples.to_bytes(samples.dataset()))], educator)

    assert ReferenceImage.objects.count() == 0
    assert media_files(media_root) == before


def test_management_command_imports_a_folder(db, tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.dcm").write_bytes(samples.to_bytes(samples.dataset()))
    (tmp_path / "b.dcm").write_bytes(samples.truncated())

    call_command("import_dicom_folder", "folder pool", str(tmp_path))

    out = capsys.readouterr().out
    assert "1 imported, 0 duplicate(s), 1 refused" in out
    assert "refused b.dcm" in out
    pool = ReferencePool.objects.get(name="folder pool")
    assert [i.source_name for i in pool.images.all()] == ["sub/a.dcm"]


def test_bombs_are_refused_before_they_are_decoded(pool, educator, settings):
    """A megabyte that inflates to far more, in a file or a zip, and an RLE file declaring
    20000 x 20000 x 2 frames: each refused from its header or a bounded read, nothing kept."""
    settings.GANTRY_MAX_DECODED_BYTES = 16 * 2**20
    deflated = samples.deflate_bomb(64 * 2**20)
    assert len(deflated) < 2**20
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.dcm", deflated)
    report = import_files(
        pool,
        [
            ("deflated.dcm", deflated),
            ("bombs.zip", archive.getvalue()),
            ("rle.dcm", samples.rle_declaring(20000, 20000, 2)),
        ],
        educator,
    )
    reasons = dict(report.refused)
    assert "inflates to more than 16 MiB" in reasons["deflated.dcm"]
    assert "inflates to more than 16 MiB" in reasons["bombs.zip/bomb.dcm"]
    assert "1526 MiB decoded" in reasons["rle.dcm"]
    assert not report.imported
    assert not pool.images.exists()


def declaring(data: bytes, rows: int, columns: int) -> bytes:
    """The file with its header declaring ``rows`` x ``columns``, its pixel data unchanged."""
    ds = dcmread(io.BytesIO(data))
    ds.Rows, ds.Columns = rows, columns
    return samples.to_bytes(ds)


@pytest.mark.parametrize(
    "syntax", [JPEGBaseline8Bit, JPEG2000Lossless, JPEGLSLossless], ids=["jpeg", "j2k", "jpeg-ls"]
)
def test_jpeg_headers_declaring_a_bomb_are_refused_before_decoding(
    pool, educator, monkeypatch, syntax
):
    """The declared size (rows x columns x frames x samples x bits) is checked from the
    header before any decoder runs, for compressed syntaxes as for RLE."""
    data = samples.encoded(syntax, samples.pixels(bits=8) if syntax == JPEGBaseline8Bit else None)
    decoded = []
    monkeypatch.setattr(dicom_import, "iter_pixels", lambda ds: decoded.append(ds) or iter(()))
    report = import_files(pool, [("bomb.dcm", declaring(data, 30000, 30000))], educator)
    ((_, reason),) = report.refused
    assert "MiB decoded" in reason
    assert decoded == []
    assert not pool.images.exists()


def codestream_declaring(data: bytes, rows: int, columns: int) -> bytes:
    """The file with its one frame's codestream declaring ``rows`` x ``columns`` (in the
    JPEG SOF or the JPEG 2000 SIZ segment), its header unchanged."""
    ds = dcmread(io.BytesIO(data))
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    if frame[:4] == b"\xff\x4f\xff\x51":  # SIZ: Xsiz, Ysiz at bytes 8 to 16
        frame = frame[:8] + struct.pack(">2L", columns, rows) + frame[16:]
    else:  # SOF: marker, length, precision, then height and width
        sof = next(frame.index(m) for m in (b"\xff\xc0", b"\xff\xf7", b"\xff\xc3") if m in frame)
        frame = frame[: sof + 5] + struct.pack(">2H", rows, columns) + frame[sof + 9 :]
    ds.PixelData = encapsulate([frame])
    return samples.to_bytes(ds)


@pytest.mark.parametrize(
    "syntax", [JPEGBaseline8Bit, JPEG2000Lossless, JPEGLSLossless], ids=["jpeg", "j2k", "jpeg-ls"]
)
def test_a_codestream_larger_than_its_header_is_refused_before_decoding(
    pool, educator, monkeypatch, syntax
):
    """A decoder allocates what the codestream declares: a 32 x 32 header over a codestream
    of 60000 x 60000 is refused before any decoder runs."""
    data = samples.encoded(syntax, samples.pixels(bits=8) if syntax == JPEGBaseline8Bit else None)
    decoded = []
    monkeypatch.setattr(dicom_import, "iter_pixels", lambda ds: decoded.append(ds) or iter(()))
    report = import_files(pool, [("bomb.dcm", codestream_declaring(data, 60000, 60000))], educator)
    assert report.refused == [
        (
            "bomb.dcm",
            "frame 1's codestream declares 60000 x 60000 pixels where the header declares 32 x 32",
        )
    ]
    assert decoded == []


def test_a_deflated_image_within_the_limit_is_kept_inflated(pool, educator):
    report = import_files(pool, [("small.dcm", samples.deflate_bomb(2**20))], educator)
    (image,) = report.imported
    assert image.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert stored(image).pixel_array.shape == (724, 724)


PLANTED_TEXT = ("StudyDescription", "SeriesDescription", "ImageComments", "DerivationDescription")
PLANTED_MORE = ("ProtocolName", "RequestedProcedureDescription", "StudyComments")


def planted(name: str, patient_id: str):
    """The sample image with the patient's name and ID written wherever people write them:
    free text, identifiers' issuers, a nested sequence, a private tag."""
    from pydicom import Dataset

    ds = samples.dataset()
    text = f"{name} ({patient_id}) follow-up"
    for keyword in (*PLANTED_TEXT, *PLANTED_MORE):
        setattr(ds, keyword, text[:64])
    ds.IssuerOfPatientID = patient_id
    ds.OtherPatientIDs = patient_id
    ds.PatientAge, ds.PatientWeight, ds.PatientSize = "054Y", "71.5", "1.68"
    ds.AdditionalPatientHistory = text
    step = Dataset()
    step.ScheduledProcedureStepDescription = text
    step.RequestedProcedureID = patient_id
    ds.RequestAttributesSequence = [step]
    ds.PerformedProcedureStepDescription = text
    ds.add_new(0x00111010, "LO", "ACME")
    ds.add_new(0x00111011, "LO", text)
    ds.DerivationCodeSequence = []
    return ds


def test_the_basic_profile_leaves_no_planted_name_or_id(pool, educator):
    name, patient_id = "Quixote^Alonso", "MRN99887766"
    report = import_files(pool, [("a.dcm", samples.to_bytes(planted(name, patient_id)))], educator)
    (image,) = report.imported
    with image.file.open("rb") as fh:
        data = fh.read()
    for secret in (name, "Quixote", "Alonso", patient_id, "99887766"):
        assert secret.encode() not in data, secret
    ds = stored(image)
    for keyword in (*PLANTED_TEXT, "PatientAge", "PatientWeight", "PatientSize", "StudyComments"):
        assert keyword not in ds, keyword
    assert "IssuerOfPatientID" not in ds
    assert ds.PatientIdentityRemoved == "YES"
    assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == [
        "113100",
        "113107",
    ]
    assert image.deidentification["table"] == "dicomfields_2026c"


def test_well_known_roots_are_no_refuge_for_instance_uids(pool, educator):
    source = samples.dataset(sop_uid="1.2.840.10008.99.1", study_uid="1.2.840.10008.99.2")
    (image,) = import_files(pool, [("a.dcm", samples.to_bytes(source))], educator).imported
    assert image.sop_instance_uid != source.SOPInstanceUID
    assert image.study_uid != source.StudyInstanceUID
    assert stored(image).SOPClassUID == source.SOPClassUID  # a registered UID is kept


def test_the_key_is_its_own_not_the_secret_key(pool, educator, settings):
    data = samples.to_bytes(samples.dataset())

    def pseudonym() -> str:
        (image,) = import_files(pool, [("a.dcm", data)], educator).imported
        ReferenceImage.objects.filter(pk=image.pk).delete()
        return image.patient_id

    first = pseudonym()
    settings.SECRET_KEY = "another-secret-key-entirely"
    assert pseudonym() == first
    settings.GANTRY_PSEUDONYM_KEY = "another-pseudonym-key"
    assert pseudonym() != first


def test_a_pool_refuses_synthetic_images_and_other_modalities(educator, make_cases):
    pool = ReferencePool.objects.create(name="chest", modality="DX")
    instance = make_cases(1)[0].studies.first().series.get(modality="MR").instances.get()
    report = import_files(
        pool,
        [
            ("gantry.dcm", instance.file.read()),
            ("mr.dcm", samples.to_bytes(samples.dataset())),
        ],
        educator,
    )
    reasons = dict(report.refused)
    assert "synthetic image (Synthetic Data = YES)" in reasons["gantry.dcm"]
    assert "modality MR: pool chest holds DX images" in reasons["mr.dcm"]
    assert not pool.images.exists()
