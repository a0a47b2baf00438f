"""Generators: trained checkpoints and their model cards."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone


class GeneratorModel(models.Model):
    """A trained generator checkpoint and its model card (read from the sidecar JSON)."""

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    checkpoint = models.FileField(upload_to="generators/")
    sha256 = models.CharField(max_length=64, unique=True)
    architecture = models.CharField(max_length=40)
    modality = models.CharField(max_length=16)
    resolution = models.PositiveIntegerField()
    conditions_schema = models.JSONField()
    model_card = models.JSONField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        permissions = [
            ("teach_direction", "Can teach an unconditional imported generator a direction")
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("generator-detail", args=[self.pk])

    @property
    def findings(self) -> list[str]:
        return list(self.conditions_schema.get("findings", []))

    @property
    def is_imported(self) -> bool:
        """Converted from an NVIDIA StyleGAN pickle (``import-stylegan``, the upload page)."""
        return self.architecture.endswith("(imported)")

    @property
    def needs_taught_directions(self) -> bool:
        """An unconditional imported model: its findings are directions taught from an
        educator's labels of its samples."""
        return self.is_imported and not self.model_card.get("classes")

    def approved_directions(self) -> dict[str, list[float]]:
        """The taught directions whose preview an educator accepted, by finding."""
        return {
            d.finding: d.vector for d in self.taught_directions.filter(approved_at__isnull=False)
        }

    def why_it_cannot_make(self, finding: str) -> str:
        """Why a job of ``finding`` on this generator would fail, or "" when it would not."""
        if self.needs_taught_directions and finding not in self.approved_directions():
            return (
                f"{self.title} is an unconditional model and has no direction for {finding} yet: "
                "teach one from labelled samples on its page (Teach a direction) and accept "
                "its preview"
            )
        return ""

    def placement(self, finding: str) -> dict[str, list[str]]:
        """Where this generator can put ``finding``: its sides and locations (empty lists
        for generators that do not place lesions)."""
        options = self.conditions_schema.get("placement", {}).get(finding, {})
        return {
            "sides": list(options.get("sides", [])),
            "locations": list(options.get("locations", [])),
        }

    @classmethod
    def register(
        cls, checkpoint_path: Path, *, name: str, title: str, active: bool = True
    ) -> GeneratorModel:
        """Store a checkpoint and record its model card; idempotent on the checkpoint's sha256.

        Reads only the sidecar ``<name>.card.json`` written beside the checkpoint, so the web
        process never needs torch. An inactive generator is offered to no template until it
        is published.
        """
        card_path = checkpoint_path.with_suffix(".card.json")
        card = json.loads(card_path.read_text())
        existing = cls.objects.filter(sha256=card["sha256"]).first()
        if existing is not None:
            return existing
        model = cls(
            name=name,
            title=title,
            sha256=card["sha256"],
            architecture=card["architecture"],
            modality=card["modality"],
            resolution=card["resolution"],
            conditions_schema=card["conditions"],
            model_card=card,
            is_active=active,
        )
        with checkpoint_path.open("rb") as fh:
            model.checkpoint.save(
                f"{card['sha256'][:16]}-{checkpoint_path.name}", File(fh), save=False
            )
        model.save()
        for figure in sorted(checkpoint_path.parent.glob(f"{checkpoint_path.stem}.*.png")):
            GeneratorFigure.add(model, figure, stem=checkpoint_path.stem)
        return model


class GeneratorFigure(models.Model):
    """A figure shipped beside a checkpoint: ``<name>.<finding>[.<contrast>].png``, a grid
    of sampled cases (rows patients, columns severity) that shows an educator what the
    generator makes before any case is generated."""

    generator = models.ForeignKey(GeneratorModel, on_delete=models.CASCADE, related_name="figures")
    caption = models.CharField(max_length=200)
    image = models.FileField(upload_to="generators/figures/")

    class Meta:
        ordering = ("caption",)

    def __str__(self) -> str:
        return self.caption

    @classmethod
    def add(cls, generator: GeneratorModel, path: Path, *, stem: str) -> GeneratorFigure:
        words = path.name.removeprefix(f"{stem}.").removesuffix(".png").split(".")
        figure = cls(generator=generator, caption=" · ".join(words))
        with path.open("rb") as fh:
            figure.image.save(f"{generator.sha256[:16]}-{path.name}", File(fh), save=False)
        figure.save()
        return figure


class GeneratorSample(models.Model):
    """A sample of an unconditional imported generator at a fixed seed, shown for labelling
    (:mod:`genworker.stylegan.directions`)."""

    generator = models.ForeignKey(GeneratorModel, on_delete=models.CASCADE, related_name="samples")
    seed = models.PositiveIntegerField()
    image = models.FileField(upload_to="generators/samples/")

    class Meta:
        ordering = ("generator", "seed")
        constraints = [
            models.UniqueConstraint(fields=("generator", "seed"), name="unique_generator_sample")
        ]

    def __str__(self) -> str:
        return f"{self.generator.name} seed {self.seed}"

    @classmethod
    def add(cls, generator: GeneratorModel, seed: int, png: bytes) -> GeneratorSample:
        sample = cls(generator=generator, seed=seed)
        sample.image.save(f"{generator.sha256[:16]}-{seed}.png", ContentFile(png), save=False)
        sample.save()
        return sample


class TaughtDirection(models.Model):
    """A finding's direction in w, fitted to an educator's labels of the generator's samples.

    A fit shows its preview series first; cases use the direction only once an educator
    accepts the preview (``approved_at``). Labelling again replaces the fit and asks for the
    preview to be accepted again.
    """

    generator = models.ForeignKey(
        GeneratorModel, on_delete=models.CASCADE, related_name="taught_directions"
    )
    finding = models.CharField(max_length=64)
    labels = models.JSONField(
        default=dict, help_text="Seed -> whether its sample shows the finding."
    )
    vector = models.JSONField(default=list, help_text="The w shift of severity 1.")
    training_accuracy = models.FloatField(null=True, blank=True)
    preview = models.FileField(upload_to="generators/previews/", blank=True)
    taught_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    fitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("generator", "finding")
        constraints = [
            models.UniqueConstraint(fields=("generator", "finding"), name="unique_taught_direction")
        ]

    def __str__(self) -> str:
        return f"{self.generator.name}: {self.finding}"

    @property
    def positives(self) -> int:
        return sum(1 for shows in self.labels.values() if shows)

    @property
    def negatives(self) -> int:
        return len(self.labels) - self.positives

    def record_fit(
        self, *, vector: list[float], training_accuracy: float, preview_png: bytes
    ) -> None:
        """Store a fit and its preview; it waits for an educator to accept the preview. The
        previous preview's file goes once this is committed."""
        previous = self.preview.name
        self.vector = vector
        self.training_accuracy = training_accuracy
        self.preview.save(
            f"{self.generator.sha256[:16]}-{self.finding}.png", ContentFile(preview_png), save=False
        )
        self.fitted_at = timezone.now()
        self.approved_at = None
        self.save()
        if previous:
            storage = self.preview.storage
            transaction.on_commit(lambda: storage.delete(previous))

    def approve(self) -> None:
        """Let cases use the fitted direction; its finding becomes one the generator makes."""
        if not self.fitted_at:
            raise ValidationError("the direction has not been fitted yet")
        with transaction.atomic():
            TaughtDirection.objects.filter(pk=self.pk).update(approved_at=timezone.now())
            generator = GeneratorModel.objects.select_for_update().get(pk=self.generator_id)
            if self.finding not in generator.findings:
                schema = {**generator.conditions_schema}
                schema["findings"] = [*generator.findings, self.finding]
                GeneratorModel.objects.filter(pk=generator.pk).update(conditions_schema=schema)
        self.refresh_from_db()
