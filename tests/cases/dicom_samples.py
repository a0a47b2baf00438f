"""Real DICOM files made in the test process: one image in every transfer syntax the import
must read, and broken files of each kind it must refuse. Nothing is downloaded."""

from __future__ import annotations

import io
import struct
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "HOSP-0042"
BIRTH_DATE = "19700305"
STUDY_DATE = "20240117"
LOSSLESS = {
    "explicit-little": ExplicitVRLittleEndian,
    "implicit-little": ImplicitVRLittleEndian,
    "explicit-big": ExplicitVRBigEndian,
    "rle": RLELossless,
    "jpeg-ls": JPEGLSLossless,
    "jpeg-2000": JPEG2000Lossless,
    "jpeg-lossless": JPEGLosslessSV1,
}


def pixels(rows: int = 32, cols: int = 32, frames: int = 1, bits: int = 16) -> np.ndarray:
    """A smooth gradient with a bright disc: compresses well and shows lossy error."""
    yy, xx = np.mgrid[0:rows, 0:cols]
    top = 4000 if bits == 16 else 250
    base = (xx + yy) * (top // (rows + cols))
    disc = ((yy - rows / 2) ** 2 + (xx - cols / 2) ** 2 < (rows / 4) ** 2) * (top // 3)
    image = (base + disc).astype(np.uint16 if bits == 16 else np.uint8)
    return np.stack([np.roll(image, k, axis=1) for k in range(frames)]) if frames > 1 else image


def dataset(
    array: np.ndarray | None = None,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> Dataset:
    """An MR image with identifying attributes and a private tag, Explicit VR Little Endian."""
    array = pixels() if array is None else array
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MRImageStorage if array.dtype == np.uint16 else SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PATIENT_NAME, PATIENT_ID, BIRTH_DATE
    ds.PatientSex = "F"
    ds.StudyDate = ds.SeriesDate = STUDY_DATE
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC123"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.InstitutionName = "St Elsewhere"
    ds.StationName = "MR01"
    ds.Modality = "MR"
    ds.SeriesNumber, ds.InstanceNumber = 3, 1
    ds.add_new(0x00090010, "LO", "ACME private")
    ds.add_new(0x00091001, "LO", "scanner secret")
    frames = array.shape[0] if array.ndim == 3 else 1
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = array.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    bits = array.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = (
        bits,
        bits if bits == 8 else 12,
        (bits - 1 if bits == 8 else 11),
    )
    ds.PixelRepresentation = 0
    ds.PixelData = array.tobytes()
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def encoded(syntax: str, array: np.ndarray | None = None, **uids: str) -> bytes:
    """The sample image written in ``syntax`` (one of LOSSLESS's values, or JPEG baseline)."""
    ds = dataset(array, **uids)
    if syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian):
        if syntax == ExplicitVRBigEndian:
            ds.PixelData = ds.pixel_array.astype(
                ">u2" if ds.BitsAllocated == 16 else "u1"
            ).tobytes()
        ds.file_meta.TransferSyntaxUID = syntax
        buffer = io.BytesIO()
        ds.save_as(
            buffer,
            enforce_file_format=True,
            implicit_vr=syntax == ImplicitVRLittleEndian,
            little_endian=syntax != ExplicitVRBigEndian,
        )
        return buffer.getvalue()
    if syntax == JPEGLosslessSV1:
        return _gdcm_transcode(to_bytes(ds), "JPEGLosslessProcess14_1")
    if syntax == JPEGBaseline8Bit:
        return _jpeg_baseline(ds)
    ds.compress(syntax)
    return to_bytes(ds)


def _jpeg_baseline(ds: Dataset) -> bytes:
    array = ds.pixel_array
    frames = array if array.ndim == 3 else array[np.newaxis]
    jpegs = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame.astype(np.uint8)).save(buffer, "JPEG", quality=95)
        jpegs.append(buffer.getvalue())
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate(jpegs)
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression = "01"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return to_bytes(ds)


def _gdcm_transcode(data: bytes, syntax_name: str) -> bytes:
    import gdcm  # test-only encoder: pydicom has none for JPEG lossless

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.dcm"), Path(folder, "out.dcm")
        source.write_bytes(data)
        reader = gdcm.ImageReader()
        reader.SetFileName(str(source))
        assert reader.Read()
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, syntax_name)))
        change.SetInput(reader.GetImage())
        assert change.Change()
        writer = gdcm.ImageWriter()
        writer.SetFileName(str(target))
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        assert writer.Write()
        return target.read_bytes()


# ---- broken files --------------------------------------------------------------------------


def truncated() -> bytes:
    data = to_bytes(dataset())
    return data[: len(data) - 700]


def no_pixel_data() -> bytes:
    ds = dataset()
    del ds.PixelData
    return to_bytes(ds)


def _element_offset(data: bytes, tag: tuple[int, int]) -> int:
    marker = struct.pack("<HH", *tag)
    offset = data.find(marker, 132)
    assert offset > 0, f"{tag} not found"
    return offset


def wrong_vr() -> bytes:
    """Rows (0028,0010) declared as DS instead of US (explicit VR, same length)."""
    data = bytearray(to_bytes(dataset()))
    offset = _element_offset(bytes(data), (0x0028, 0x0010))
    data[offset + 4 : offset + 6] = b"DS"
    data[offset + 8 : offset + 10] = b"32"
    return bytes(data)


def huge_length() -> bytes:
    """StudyDescription rewritten as a UN element that declares a value of almost 4 GiB."""
    ds = dataset()
    ds.StudyDescription = "HEAD"
    data = to_bytes(ds)
    offset = _element_offset(data, (0x0008, 0x1030))
    # Explicit VR LO: tag, VR, 2-byte length; UN: tag, VR, 2 reserved bytes, 4-byte length.
    return data[: offset + 4] + b"UN\x00\x00" + struct.pack("<I", 0xFFFFFFF0) + data[offset + 8 :]


def not_dicom() -> bytes:
    return b"%PDF-1.4\n" + b"this is a report, not an image\n" * 20


def deflate_bomb(pixel_bytes: int) -> bytes:
    """A Deflated Explicit VR Little Endian image whose ``pixel_bytes`` of zeros deflate to
    about a thousandth of that."""
    ds = dataset()
    side = int((pixel_bytes // 2) ** 0.5)
    ds.Rows = ds.Columns = side
    ds.PixelData = bytes(side * side * 2)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return to_bytes(ds)


def rle_declaring(rows: int, columns: int, frames: int) -> bytes:
    """An RLE file whose header declares ``rows`` x ``columns`` x ``frames`` 16-bit pixels
    over a few bytes of encoded data."""
    ds = dataset()
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    header = struct.pack("<16L", 2, 64, 66, *([0] * 13))
    ds.PixelData = encapsulate([header + b"\x81\x00\x81\x00"] * frames)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    return to_bytes(ds)
