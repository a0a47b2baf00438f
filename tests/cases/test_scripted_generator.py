"""A generator behind the TorchScript contract, registered and sampled by a generation job like
any other: DICOM marked synthetic and traceable, masks only where it has a segmenter."""

import io

import numpy as np
import pydicom
import pytest
from django.core.exceptions import ValidationError

from cases.generation import worker
from cases.models import Instance, LesionGroundTruth
from tests.factories import GenerationJobFactory, TemplateVersionFactory
from tests.scripted_generator import CARD

PROGRESSION = {
    "timepoints": 3,
    "severity_from": 0.0,
    "severity_to": 1.0,
    "interval_days": 90,
    "method": "condition",
}


def _run_job(generator, n_cases=2):
    version = TemplateVersionFactory(
        generator=generator, finding="nodule", body_region="chest", progression=PROGRESSION
    )
    job = GenerationJobFactory(template_version=version, n_cases=n_cases)
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    return job


def test_registering_reads_the_contract_card(scripted_model):
    generator = scripted_model()
    assert (generator.architecture, generator.modality, generator.resolution) == (
        "torchscript",
        "DX",
        16,
    )
    assert generator.findings == ["normal", "nodule"]


def test_a_job_makes_synthetic_traceable_cases_with_ground_truth(scripted_model):
    generator = scripted_model()
    job = _run_job(generator)
    assert (job.status, job.done, job.error) == ("succeeded", 2, "")
    case = job.cases.get(case_index=0)
    assert len(case.latent_z) == CARD["z_dim"]
    images = Instance.objects.filter(series__study__patient=case, series__modality="DX")
    images = sorted(images, key=lambda image: image.severity)
    assert [round(image.severity, 2) for image in images] == [0.0, 0.5, 1.0]
    assert all(image.latent_w == case.latent_z for image in images)  # the z each came from
    ds = pydicom.dcmread(io.BytesIO(images[0].file.read()))
    assert ds.SyntheticData == "YES"
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray For Presentation
    assert ds.ContributingEquipmentSequence[0].DeviceSerialNumber == generator.sha256
    assert ds.pixel_array.shape == (16, 16)
    assert [float(v) for v in ds.PixelSpacing] == [CARD["pixel_spacing_mm"]] * 2
    areas = [image.lesion.area_pixels for image in images]
    assert areas[0] < areas[1] < areas[2]
    seg = pydicom.dcmread(io.BytesIO(images[2].lesion.segmentation.file.read()))
    assert seg.SyntheticData == "YES"
    assert int(np.asarray(seg.pixel_array).sum()) == areas[2]


def test_cases_of_a_generator_without_a_segmenter_carry_no_ground_truth(scripted_model):
    job = _run_job(scripted_model(masks=False), n_cases=1)
    assert job.status == "succeeded"
    assert Instance.objects.filter(series__study__patient__job=job).count() == 3  # no SEG
    assert not LesionGroundTruth.objects.exists()


def test_a_template_cannot_ask_a_scripted_generator_for_a_direction(scripted_model):
    version = TemplateVersionFactory.build(
        generator=scripted_model(),
        finding="nodule",
        progression={**PROGRESSION, "method": "direction"},
    )
    with pytest.raises(ValidationError, match="moves severity through its condition"):
        version.clean()


def test_the_register_command_lists_a_packed_generator(db, scripted_checkpoints):
    from django.core.management import CommandError, call_command

    from cases.models import GeneratorModel

    call_command("register_generator", str(scripted_checkpoints[True]), "--title", "Disks")
    generator = GeneratorModel.objects.get(name="scripted-disk")
    assert (generator.title, generator.architecture) == ("Disks", "torchscript")
    with pytest.raises(CommandError, match="no file at"):
        call_command("register_generator", str(scripted_checkpoints[True].with_name("none.pt")))
