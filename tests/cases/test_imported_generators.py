"""A generator imported from an NVIDIA StyleGAN pickle makes cases as any other does."""

import io

import pydicom
import pytest
import torch

from cases.generation import worker
from cases.models import GeneratorModel, Instance, LesionGroundTruth
from genworker.stylegan.convert import CardFields, import_network_pickle
from tests.factories import GenerationJobFactory, TemplateVersionFactory
from tests.stylegan_pickles import needs_pickles, pickle_path

PICKLE = pickle_path("stylegan2-ada-cond-gray32")
pytestmark = needs_pickles


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Two threads on the shared two cores ran these convolutions ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def imported_model(db, tmp_path):
    checkpoint = tmp_path / "imported-brain.pt"
    fields = CardFields("MR", ("normal", "glioma", "meningioma"), licence="CC BY 4.0")
    import_network_pickle(PICKLE, checkpoint, fields)
    return GeneratorModel.register(checkpoint, name="imported-brain", title="Imported brain")


def test_an_imported_model_registers_with_its_findings(imported_model):
    assert imported_model.architecture == "stylegan2 (imported)"
    assert imported_model.findings == ["glioma", "meningioma"]
    assert imported_model.model_card["licence"] == "CC BY 4.0"


def test_an_imported_models_job_writes_synthetic_dicom_without_ground_truth(imported_model):
    version = TemplateVersionFactory(generator=imported_model, finding="meningioma")
    job = GenerationJobFactory(template_version=version, n_cases=2)
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.error) == ("succeeded", 2, "")
    images = Instance.objects.filter(series__modality="MR")
    assert images.count() == 6
    assert not LesionGroundTruth.objects.exists()
    ds = pydicom.dcmread(io.BytesIO(images.first().file.read()))
    assert ds.SyntheticData == "YES"
    assert ds.ContributingEquipmentSequence[0].DeviceSerialNumber == imported_model.sha256
    assert ds.pixel_array.shape == (32, 32)
    assert ds.pixel_array.std() > 0
