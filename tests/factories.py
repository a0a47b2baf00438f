"""factory_boy factories for the cases app (and the users of each role)."""

from __future__ import annotations

import io

import factory
import numpy as np
import pydicom
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from pydicom.uid import generate_uid

from cases.models import (
    CaseTemplate,
    GenerationJob,
    Instance,
    Series,
    Study,
    SyntheticPatient,
    TemplateVersion,
)

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **_kwargs: object) -> None:
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))
        if create:
            self.save()


class CaseTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CaseTemplate

    title = factory.Sequence(lambda n: f"Glioma growth {n}")
    created_by = factory.SubFactory(UserFactory, role="educator")


class TemplateVersionFactory(factory.django.DjangoModelFactory):
    """A version of a template; pass ``generator=`` (a registered GeneratorModel)."""

    class Meta:
        model = TemplateVersion

    template = factory.SubFactory(CaseTemplateFactory)
    number = factory.LazyAttribute(
        lambda o: o.template.versions.count() + 1 if o.template.pk else 1
    )
    title = factory.SelfAttribute("template.title")
    modality = factory.SelfAttribute("generator.modality")
    body_region = "brain"
    finding = "glioma"
    truncation = 0.8
    progression = factory.LazyFunction(
        lambda: {
            "timepoints": 3,
            "severity_from": 0.2,
            "severity_to": 0.8,
            "interval_days": 60,
            "method": "condition",
        }
    )
    patient_recipe = factory.LazyFunction(
        lambda: {
            "age_min": 40,
            "age_max": 70,
            "sex_mix": 0.5,
            "comorbidities": {"hypertension": 0.3},
        }
    )
    history = "A {age}-year-old {sex_word} with headaches."
    diagnosis = "Glioma"
    created_by = factory.SelfAttribute("template.created_by")


class GenerationJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenerationJob

    template_version = factory.SubFactory(TemplateVersionFactory)
    requested_by = factory.SelfAttribute("template_version.created_by")
    n_cases = 2
    seed = 1234


CONTENT_FIELDS = (
    "title",
    "modality",
    "body_region",
    "finding",
    "generator",
    "truncation",
    "progression",
    "patient_recipe",
    "history",
    "diagnosis",
)


def version_content(generator, **overrides) -> dict:
    """The fields of a valid template version, as ``CaseTemplate.add_version`` takes them."""
    built = TemplateVersionFactory.build(generator=generator, template=CaseTemplateFactory.build())
    return {**{name: getattr(built, name) for name in CONTENT_FIELDS}, **overrides}


def add_contrast(study: Study, number: int, description: str) -> Instance:
    """A second image series in `study`: a copy of its image, inverted, as another contrast
    (aligned with it and its lesion mask, as a generator's contrasts are)."""
    source = study.series.get(series_number=1).instances.get()
    with source.file.open("rb") as fh:
        ds = pydicom.dcmread(fh)
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.PixelData = (ds.pixel_array.max() - ds.pixel_array).astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    name = default_storage.save(
        f"test-contrasts/{ds.SOPInstanceUID}.dcm", ContentFile(buffer.getvalue())
    )
    series = Series.objects.create(
        study=study,
        series_uid=ds.SeriesInstanceUID,
        modality="MR",
        series_number=number,
        description=description,
    )
    return Instance.objects.create(
        series=series,
        sop_instance_uid=ds.SOPInstanceUID,
        sop_class_uid=ds.SOPClassUID,
        instance_number=1,
        file=name,
        size=len(buffer.getvalue()),
        seed=source.seed,
        truncation=source.truncation,
        severity=source.severity,
        latent_w=[],
    )


def add_brain_contrasts(patient: SyntheticPatient) -> None:
    """Make each study of `patient` a brain MRI of three contrasts described as the brain
    generators describe them: its image as "Synthetic T1 t<n>", then FLAIR and T1c."""
    for study in patient.studies.all():
        when = f"t{study.timepoint + 1}"
        study.series.filter(series_number=1).update(description=f"Synthetic T1 {when}")
        for number, channel in enumerate(("FLAIR", "T1c"), start=2):
            add_contrast(study, number, f"Synthetic {channel} {when}")
