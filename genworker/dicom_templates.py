"""Fast DICOM writing: each kind of object is encoded once, then only what differs is filled in.

Building and encoding one object with pydicom and highdicom takes 8 ms for an image and
over 40 ms for its segmentation, several times what the generator takes to synthesise the
image. Yet the objects of one kind (same generator, modality, grid; for segmentations the
same finding) differ only in a known set of values: UIDs, patient, dates, window, pixels.

A template is the file of that kind written once by the readable builders in
``genworker.dicom``, from placeholder inputs whose every varying value is recognisable,
then cut around those values. Filling it is a join of bytes. It works because
``dicom.to_bytes`` writes sequences and items with undefined length: a value that changes
length changes no length but its own element's, and the file meta group length, which
covers the Media Storage SOP Instance UID, is recomputed here. The tests hold every filled
file byte for byte equal to what the readable builders write for the same inputs.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache

import numpy as np
from pydicom import Dataset
from pydicom.pixels import pack_bits

from genworker import dicom

# The value representation of every slot, and the encoding of its text.
SLOT_VR = {
    "sop_uid": "UI",
    "study_uid": "UI",
    "series_uid": "UI",
    "frame_uid": "UI",
    "seg_sop_uid": "UI",
    "seg_series_uid": "UI",
    "dimensions_uid": "UI",
    "created_date": "DA",
    "created_time": "TM",
    "created_datetime": "DT",
    "study_date": "DA",
    "study_time": "TM",
    "birth_date": "DA",
    "patient_name": "PN",
    "patient_id": "LO",
    "sex": "CS",
    "age": "AS",
    "study_id": "SH",
    "accession": "SH",
    "study_description": "LO",
    "series_description": "LO",
    "series_number": "IS",
    "seg_series_number": "IS",
    "instance_number": "IS",
    "window_centre": "DS",
    "window_width": "DS",
    "comments": "LT",
}
TEXT_VRS = {"LO", "LT", "PN", "SH"}  # may hold any character of ISO_IR 192 (UTF-8)
META_GROUP_LENGTH_AT = slice(140, 144)  # after the preamble, "DICM" and the element header
META_GROUP_LENGTH_HEADER = b"\x02\x00\x00\x00UL\x04\x00"


def _encode(vr: str, text: str) -> bytes:
    value = text.encode("utf-8" if vr in TEXT_VRS else "ascii")
    if len(value) % 2:
        value += b"\x00" if vr == "UI" else b" "
    return value


@dataclass(frozen=True)
class Template:
    """A Part 10 file cut into constant pieces around its slots; its pixel data comes last."""

    pieces: tuple[bytes, ...]  # one more than there are slots
    slots: tuple[str, ...]  # slot name of each hole, in file order
    meta_slots: int  # how many of the first holes lie in the file meta group
    meta_fixed_length: int  # the meta group's length without those holes' values
    pixel_bytes: int

    @classmethod
    def cut(cls, encoded: bytes, placeholders: Mapping[str, str], pixels: bytes) -> Template:
        """Cut ``encoded`` around each placeholder value, found with its VR and length."""
        if encoded[132:140] != META_GROUP_LENGTH_HEADER or not encoded.endswith(pixels):
            raise ValueError("not a Part 10 file ending in the given pixel data")
        body = encoded[: len(encoded) - len(pixels)]
        holes = []  # (start of the 2-byte length, end of the value, slot)
        for slot, text in placeholders.items():
            value = _encode(SLOT_VR[slot], text)
            pattern = SLOT_VR[slot].encode() + struct.pack("<H", len(value)) + value
            found = body.find(pattern)
            if found < 0:
                raise ValueError(f"placeholder of slot {slot!r} not in the file")
            while found >= 0:
                holes.append((found + 2, found + len(pattern), slot))
                found = body.find(pattern, found + len(pattern))
        holes.sort()
        if any(end > next_start for (_, end, _), (next_start, _, _) in itertools.pairwise(holes)):
            raise ValueError("placeholders overlap; choose more distinctive ones")
        meta_end = 144 + struct.unpack("<I", encoded[META_GROUP_LENGTH_AT])[0]
        in_meta = [hole for hole in holes if hole[0] < meta_end]
        starts = [0] + [end for _, end, _ in holes]
        stops = [start for start, _, _ in holes] + [len(body)]
        return cls(
            pieces=tuple(body[a:b] for a, b in zip(starts, stops, strict=True)),
            slots=tuple(slot for _, _, slot in holes),
            meta_slots=len(in_meta),
            meta_fixed_length=meta_end - 144 - sum(end - start - 2 for start, end, _ in in_meta),
            pixel_bytes=len(pixels),
        )

    def fill(self, values: Mapping[str, str], pixels: bytes) -> bytes:
        if len(pixels) != self.pixel_bytes:
            raise ValueError(f"expected {self.pixel_bytes} bytes of pixel data, got {len(pixels)}")
        encoded = [_encode(SLOT_VR[slot], values[slot]) for slot in self.slots]
        meta_length = self.meta_fixed_length + sum(map(len, encoded[: self.meta_slots]))
        head = self.pieces[0]
        parts = [
            head[: META_GROUP_LENGTH_AT.start],
            struct.pack("<I", meta_length),
            head[META_GROUP_LENGTH_AT.stop :],
        ]
        for value, piece in zip(encoded, self.pieces[1:], strict=True):
            parts += (struct.pack("<H", len(value)), value, piece)
        parts.append(pixels)
        return b"".join(parts)


def image_file(
    image: np.ndarray,  # display intensities [rows, cols] in [0, 1]
    *,
    patient: dicom.PatientHeader,
    header: dicom.ImageHeader,
    generator: dicom.GeneratorIdentity,
    created: datetime,
) -> bytes:
    """The same bytes as ``dicom.to_bytes(dicom.image_dataset(...))``, much faster."""
    values = dicom.to_stored_values(image)
    template = _image_template(
        generator, header.modality, header.body_part, values.shape, header.pixel_spacing_mm
    )
    return template.fill(_image_slots(patient, header, created, values), values.tobytes())


def segmentation_file(
    mask: np.ndarray,  # bool [rows, cols]
    *,
    patient: dicom.PatientHeader,
    header: dicom.ImageHeader,  # of the segmented image
    generator: dicom.GeneratorIdentity,
    created: datetime,
    finding: str,
    series_uid: str,
    sop_uid: str,
) -> bytes:
    """The same bytes as ``dicom.to_bytes(dicom.segmentation_dataset(...))``, much faster."""
    template = _segmentation_template(
        generator, header.modality, header.body_part, mask.shape, header.pixel_spacing_mm, finding
    )
    values = _segmentation_slots(patient, header, created, series_uid, sop_uid)
    return template.fill(values, _packed(mask))


def _packed(mask: np.ndarray) -> bytes:
    """One bit per pixel, as highdicom writes a one-frame binary segmentation."""
    return pack_bits(mask.astype(np.uint8).ravel(), pad=True)


def _image_slots(
    patient: dicom.PatientHeader,
    header: dicom.ImageHeader,
    created: datetime,
    stored: np.ndarray,
) -> dict[str, str]:
    centre, width = dicom.window_strings(stored)
    return {
        **_patient_study_slots(patient, header, created),
        "series_number": str(header.series_number),
        "series_description": dicom.fit_lo(header.series_description),
        "instance_number": str(header.instance_number),
        "window_centre": centre,
        "window_width": width,
        "comments": dicom.image_comments(header),
    }


def _segmentation_slots(
    patient: dicom.PatientHeader,
    header: dicom.ImageHeader,
    created: datetime,
    series_uid: str,
    sop_uid: str,
) -> dict[str, str]:
    return {
        **_patient_study_slots(patient, header, created),
        "seg_sop_uid": sop_uid,
        "seg_series_uid": series_uid,
        "dimensions_uid": dicom.dimension_organization_uid(sop_uid),
        "seg_series_number": str(header.series_number + 100),
    }


def _patient_study_slots(
    patient: dicom.PatientHeader, header: dicom.ImageHeader, created: datetime
) -> dict[str, str]:
    """Slots an image and its segmentation share (the SEG copies them from the image)."""
    return {
        "sop_uid": header.sop_uid,
        "study_uid": header.study_uid,
        "series_uid": header.series_uid,
        "frame_uid": header.frame_of_reference_uid,
        "created_date": dicom.dicom_date(created),
        "created_time": dicom.dicom_time(created),
        "created_datetime": dicom.dicom_datetime(created),
        "study_date": dicom.dicom_date(header.study_date),
        "study_time": dicom.dicom_time(header.study_time),
        "birth_date": dicom.dicom_date(patient.birth_date),
        "patient_name": patient.patient_name,
        "patient_id": patient.patient_id,
        "sex": patient.sex,
        "age": dicom.age_string(patient.birth_date, header.study_date),
        "study_id": f"T{header.timepoint}",
        "accession": header.accession_number,
        "study_description": dicom.fit_lo(header.study_description),
    }


# Placeholder inputs: every value that varies between objects is distinct from the others
# and from anything constant, so that each can be found in the encoded file.
PLACEHOLDER_PATIENT = dicom.PatientHeader(
    patient_id="PLACEHOLDER-PATIENT-ID",
    patient_name="PLACEHOLDER^PATIENT",
    birth_date=date(1801, 2, 3),
    sex="O",
)
PLACEHOLDER_CREATED = datetime(1803, 4, 5, 6, 7, 8)
PLACEHOLDER_SEG_SERIES_UID = "2.25.1804000000000000000000000000000000005"
PLACEHOLDER_SEG_SOP_UID = "2.25.1804000000000000000000000000000000006"


def _placeholder_header(modality: str, body_part: str, spacing_mm: float) -> dicom.ImageHeader:
    return dicom.ImageHeader(
        modality=modality,
        body_part=body_part,
        study_uid="2.25.1804000000000000000000000000000000001",
        series_uid="2.25.1804000000000000000000000000000000002",
        sop_uid="2.25.1804000000000000000000000000000000003",
        frame_of_reference_uid="2.25.1804000000000000000000000000000000004",
        study_date=date(1802, 3, 4),
        study_time=time(1, 2, 3),
        accession_number="GPLACEHOLDER",
        study_description="PLACEHOLDER STUDY DESCRIPTION",
        series_description="PLACEHOLDER SERIES DESCRIPTION",
        series_number=97,
        instance_number=98,
        pixel_spacing_mm=spacing_mm,
        seed=1805,
        severity=0.123,
        timepoint=7,
    )


def _placeholder_image(shape: tuple[int, int]) -> np.ndarray:
    """A ramp, so that its window centre and width are unlike any other value."""
    return np.linspace(0.21, 0.77, shape[0] * shape[1]).reshape(shape)


def _placeholder_dataset(
    generator: dicom.GeneratorIdentity, header: dicom.ImageHeader, shape: tuple[int, int]
) -> Dataset:
    return dicom.image_dataset(
        _placeholder_image(shape),
        patient=PLACEHOLDER_PATIENT,
        header=header,
        generator=generator,
        created=PLACEHOLDER_CREATED,
    )


@lru_cache(maxsize=32)
def _image_template(
    generator: dicom.GeneratorIdentity,
    modality: str,
    body_part: str,
    shape: tuple[int, int],
    spacing_mm: float,
) -> Template:
    header = _placeholder_header(modality, body_part, spacing_mm)
    ds = _placeholder_dataset(generator, header, shape)
    stored = dicom.to_stored_values(_placeholder_image(shape))
    slots = _image_slots(PLACEHOLDER_PATIENT, header, PLACEHOLDER_CREATED, stored)
    return Template.cut(dicom.to_bytes(ds), slots, stored.tobytes())


@lru_cache(maxsize=32)
def _segmentation_template(
    generator: dicom.GeneratorIdentity,
    modality: str,
    body_part: str,
    shape: tuple[int, int],
    spacing_mm: float,
    finding: str,
) -> Template:
    header = _placeholder_header(modality, body_part, spacing_mm)
    mask = np.zeros(shape, dtype=bool)
    seg = dicom.segmentation_dataset(
        _placeholder_dataset(generator, header, shape),
        mask,
        finding=finding,
        series_uid=PLACEHOLDER_SEG_SERIES_UID,
        sop_uid=PLACEHOLDER_SEG_SOP_UID,
        generator=generator,
        created=PLACEHOLDER_CREATED,
    )
    slots = _segmentation_slots(
        PLACEHOLDER_PATIENT,
        header,
        PLACEHOLDER_CREATED,
        PLACEHOLDER_SEG_SERIES_UID,
        PLACEHOLDER_SEG_SOP_UID,
    )
    return Template.cut(dicom.to_bytes(seg), slots, _packed(mask))
