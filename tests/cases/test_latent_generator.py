"""A shipped latent model (three MR contrasts at 256²) registered and sampled by a generation
job: each contrast its own DICOM series, true pixel spacing, the planned lesion's side and
location stored, every image synthetic and traceable."""

import io

import pydicom
import pytest

from cases.generation import worker
from cases.models import GeneratorModel, Instance, LesionGroundTruth
from tests.factories import GenerationJobFactory, TemplateVersionFactory

PROGRESSION = {
    "timepoints": 2,
    "severity_from": 0.4,
    "severity_to": 0.9,
    "interval_days": 90,
    "method": "condition",
    "side": "left",
    "location": "frontal",
}


@pytest.fixture(scope="session")
def tiny_latent_checkpoint(tiny_brain_run, tmp_path_factory):
    from genworker.latent import training
    from genworker.latent.cli import model_card
    from genworker.latent.model import DOMAINS, save_latent_model

    recipe, run = tiny_brain_run
    path = tmp_path_factory.mktemp("latent-models") / "brain-mri-cgan.pt"
    save_latent_model(
        path,
        domain=DOMAINS["brain-mri"],
        card=model_card(recipe, "cgan", run),
        **training.trained_parts(recipe, run, "cgan"),
    )
    return path


@pytest.fixture
def latent_generator(db, tiny_latent_checkpoint, monkeypatch):
    from genworker.latent import model

    monkeypatch.setattr(model, "MIN_DICE", -1.0)  # two training steps segment nothing
    return GeneratorModel.register(tiny_latent_checkpoint, name="brain-mri-cgan", title="Brain")


def test_a_latent_job_writes_each_contrast_as_its_own_series(
    latent_generator, plan_on_a_real_brain, media_root
):
    assert sorted(latent_generator.placement("glioma")["sides"]) == ["left", "right"]
    version = TemplateVersionFactory(
        generator=latent_generator, finding="glioma", body_region="brain", progression=PROGRESSION
    )
    job = GenerationJobFactory(template_version=version, n_cases=1, with_twins=True)
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error) == ("succeeded", "")
    case = job.cases.cases().get()
    assert case.normal_twin is not None
    spacing = latent_generator.model_card["pixel_spacing_mm"]
    for study in case.studies.order_by("timepoint"):
        images = Instance.objects.filter(series__study=study, series__modality="MR")
        assert len({image.series_id for image in images}) == 3
        descriptions = " ".join(image.series.description for image in images)
        assert all(contrast in descriptions for contrast in ("T1", "FLAIR", "T1c"))
        for image in images:
            ds = pydicom.dcmread(io.BytesIO(image.file.read()))
            assert ds.SyntheticData == "YES"
            assert ds.pixel_array.shape == (256, 256)
            assert [float(v) for v in ds.PixelSpacing] == pytest.approx([spacing] * 2)
            assert image.seed == case.seed
    truths = LesionGroundTruth.objects.filter(image__series__study__patient=case)
    assert truths.exists()
    assert {(t.side, t.location) for t in truths if t.area_pixels} == {("left", "frontal")}


def test_a_quiz_asks_about_each_multi_contrast_study_once(
    latent_generator, plan_on_a_real_brain, media_root
):
    from edu import keys

    version = TemplateVersionFactory(
        generator=latent_generator, finding="glioma", body_region="brain", progression=PROGRESSION
    )
    job = GenerationJobFactory(template_version=version, n_cases=1)
    worker.run_generation_job(job_pk=job.pk)
    case = job.cases.cases().get()
    shown = keys.images_of_case(case)
    assert [image.series.study.timepoint for image in shown] == sorted(
        case.studies.values_list("timepoint", flat=True)
    )
    for image in shown:  # the study's first series: T1
        numbers = image.series.study.series.exclude(modality="SEG")
        assert image.series.series_number == min(s.series_number for s in numbers)
        assert "T1" in image.series.description
        assert "T1c" not in image.series.description
