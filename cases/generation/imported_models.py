"""Generators imported from NVIDIA StyleGAN pickles through the site, and the directions an
unconditional one is taught, as background operations on the cpu queue.

- An upload: the page stores the pickle through the storage API and records the operation;
  the task converts it (read as data by the restricted unpickler, never executed), draws the
  samples an unconditional model is taught from, and registers the generator unpublished,
  all in one transaction with the operation's success. A refused or broken pickle fails the
  operation with the converter's message and registers nothing.
- Samples: the labelling grid of a generator registered without them (from the command line).
- A fit: the direction in w that separates the samples labelled as showing the finding from
  the others, and its preview series, which an educator accepts before cases use it.

The engine (and torch) is imported inside the tasks' work only: pages import this module.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.urls import reverse

from cases.models import (
    AlreadyFinished,
    GeneratorModel,
    GeneratorSample,
    Operation,
    TaughtDirection,
)

IMPORT_TASK = "cases.tasks.import_stylegan"
SAMPLES_TASK = "cases.tasks.draw_generator_samples"
FIT_TASK = "cases.tasks.fit_taught_direction"
WORKER_DEVICE = "cpu"  # cpu-queue workers: no GPU is assumed


def launch_stylegan_import(upload: UploadedFile, *, card: dict[str, Any], user: Any) -> Operation:
    """Store the pickle and queue its conversion. ``card`` holds the form's plain values:
    name, title, modality, findings, licence, citation, pixel_spacing_mm."""
    stored = default_storage.save(f"operations/uploads/{uuid.uuid4().hex}/network.pkl", upload)
    return Operation.launch(
        task=IMPORT_TASK,
        title=f"Import of {upload.name} as {card['title']}",
        user=user,
        params={"upload": stored, "file_name": upload.name, "card": card},
        total=3,  # converted, samples drawn, registered
    )


def run_stylegan_import(operation: Operation) -> dict[str, Any]:
    """The task's work: convert, draw the labelling samples of an unconditional model,
    register; the uploaded pickle is deleted whatever happens."""
    from genworker.stylegan.convert import CardFields, import_network_pickle
    from genworker.stylegan.direction_fit import SAMPLE_SEEDS
    from genworker.stylegan.directions import png_bytes, sample_pictures

    card = operation.params["card"]
    try:
        with tempfile.TemporaryDirectory() as folder:
            pickle_path = Path(folder) / (Path(operation.params["file_name"]).name or "net.pkl")
            upload = default_storage.open(operation.params["upload"], "rb")
            with upload as src, pickle_path.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            out = Path(folder) / f"{card['name']}.pt"
            fields = CardFields(
                modality=card["modality"],
                findings=tuple(card["findings"]),
                licence=card["licence"],
                citation=card["citation"],
                pixel_spacing_mm=card["pixel_spacing_mm"],
                teach_findings=True,
            )
            model = import_network_pickle(pickle_path, out, fields)
            operation.record_progress(1)
            samples = []
            if not model.generator.c_dim:
                pictures = sample_pictures(model, SAMPLE_SEEDS)
                samples = [
                    (seed, png_bytes(picture))
                    for seed, picture in zip(SAMPLE_SEEDS, pictures, strict=True)
                ]
            operation.record_progress(2)
            return _register(operation, out, card, samples)
    finally:
        default_storage.delete(operation.params["upload"])


def _register(
    operation: Operation, checkpoint: Path, card: dict[str, Any], samples: list[tuple[int, bytes]]
) -> dict[str, Any]:
    """The generator (unpublished) and its samples, committed with the operation's success;
    the files stored are removed again if that fails."""
    written: list[FieldFile] = []
    try:
        with transaction.atomic():
            generator = _new_generator(checkpoint, card)
            written.append(generator.checkpoint)
            for seed, png in samples:
                written.append(GeneratorSample.add(generator, seed, png).image)
            result = _import_result(generator)
            if not operation.succeed(result):
                raise AlreadyFinished
    except BaseException:
        for file in written:
            file.delete(save=False)
        raise
    return result


def _new_generator(checkpoint: Path, card: dict[str, Any]) -> GeneratorModel:
    from genworker.checkpoint import sha256_file

    existing = GeneratorModel.objects.filter(sha256=sha256_file(checkpoint)).first()
    if existing is not None:
        raise ValidationError(f"this network is already registered as {existing.name}")
    if GeneratorModel.objects.filter(name=card["name"]).exists():
        raise ValidationError(f"a generator is already named {card['name']}")
    return GeneratorModel.register(checkpoint, name=card["name"], title=card["title"], active=False)


def _import_result(generator: GeneratorModel) -> dict[str, Any]:
    classes = generator.model_card.get("classes") or []
    kind = f"{len(classes)} classes" if classes else "unconditional"
    next_step = (
        "teach it a direction for each finding, then publish it"
        if generator.needs_taught_directions
        else "publish it on its page to offer it to templates"
    )
    return {
        "summary": f"Registered {generator.title} ({generator.architecture}, {kind}, "
        f"{generator.resolution}²), not published yet: {next_step}.",
        "generator": generator.pk,
        "link": generator.get_absolute_url(),
        "link_text": f"Open the generator {generator.title}",
    }


def launch_samples(generator: GeneratorModel, *, user: Any) -> Operation:
    return Operation.launch(
        task=SAMPLES_TASK,
        title=f"Samples of {generator.title} to label",
        user=user,
        params={"generator": generator.pk, "back": _teaching_url(generator)},
        total=1,
    )


def run_samples(operation: Operation) -> dict[str, Any]:
    from genworker.stylegan.direction_fit import SAMPLE_SEEDS
    from genworker.stylegan.directions import png_bytes, sample_pictures

    generator = GeneratorModel.objects.get(pk=operation.params["generator"])
    pictures = sample_pictures(_loaded(generator), SAMPLE_SEEDS)
    written: list[FieldFile] = []
    try:
        with transaction.atomic():
            generator.samples.all().delete()
            for seed, picture in zip(SAMPLE_SEEDS, pictures, strict=True):
                written.append(GeneratorSample.add(generator, seed, png_bytes(picture)).image)
            result = {
                "summary": f"{len(written)} samples drawn.",
                "link": _teaching_url(generator),
                "link_text": "Label them",
            }
            if not operation.succeed(result):
                raise AlreadyFinished
    except BaseException:
        for file in written:
            file.delete(save=False)
        raise
    return result


def launch_fit(direction: TaughtDirection, labels: dict[str, bool], *, user: Any) -> Operation:
    """Record the labels and queue the fit of the direction to them."""
    direction.labels = labels
    direction.taught_by = user
    direction.save(update_fields=["labels", "taught_by"])
    generator = direction.generator
    return Operation.launch(
        task=FIT_TASK,
        title=f"Direction of {direction.finding} in {generator.title}",
        user=user,
        params={"direction": direction.pk, "labels": labels, "back": _teaching_url(generator)},
        total=2,  # fitted, preview drawn
    )


def run_fit(operation: Operation) -> dict[str, Any]:
    """The task's work: fit the direction to the labels the page sent, draw its preview and
    store both, waiting for an educator to accept the preview."""
    from genworker.stylegan.direction_fit import fit_direction
    from genworker.stylegan.directions import preview_series, sample_ws, strip_png

    direction = TaughtDirection.objects.select_related("generator").get(
        pk=operation.params["direction"]
    )
    labels = operation.params["labels"]
    seeds = sorted(int(seed) for seed in labels)
    model = _loaded(direction.generator)
    try:
        fitted = fit_direction(sample_ws(model, seeds), [labels[str(s)] for s in seeds])
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    operation.record_progress(1)
    preview = strip_png(preview_series(model, fitted.vector))
    result = {
        "summary": f"Fitted to {fitted.positives} samples that show {direction.finding} "
        f"and {fitted.negatives} that do not; it separates "
        f"{fitted.training_accuracy:.0%} of them. Look at its preview before cases use it.",
        "link": _teaching_url(direction.generator, direction.finding),
        "link_text": "See the preview",
    }
    previous = direction.preview.name
    try:
        with transaction.atomic():
            direction.labels = labels
            direction.record_fit(
                vector=[float(v) for v in fitted.vector],
                training_accuracy=fitted.training_accuracy,
                preview_png=preview,
            )
            if not operation.succeed(result):
                raise AlreadyFinished
    except BaseException:
        if direction.preview.name != previous:
            direction.preview.delete(save=False)
        raise
    return result


def _loaded(generator: GeneratorModel):  # -> genworker.stylegan.model.ImportedStyleGAN
    from cases.generation.worker import load_generator_for

    if not generator.needs_taught_directions:
        raise ValidationError(f"{generator.title} is not an unconditional imported model")
    return load_generator_for(generator, WORKER_DEVICE)


def _teaching_url(generator: GeneratorModel, finding: str = "") -> str:
    url = reverse("generator-directions", args=[generator.pk])
    return f"{url}?finding={finding}" if finding else url
