"""Generators: trained checkpoints and their model cards."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.files import File
from django.db import models
from django.urls import reverse


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

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("generator-detail", args=[self.pk])

    @property
    def findings(self) -> list[str]:
        return list(self.conditions_schema.get("findings", []))

    def placement(self, finding: str) -> dict[str, list[str]]:
        """Where this generator can put ``finding``: its sides and locations (empty lists
        for generators that do not place lesions)."""
        options = self.conditions_schema.get("placement", {}).get(finding, {})
        return {
            "sides": list(options.get("sides", [])),
            "locations": list(options.get("locations", [])),
        }

    @classmethod
    def register(cls, checkpoint_path: Path, *, name: str, title: str) -> GeneratorModel:
        """Store a checkpoint and record its model card; idempotent on the checkpoint's sha256.

        Reads only the sidecar ``<name>.card.json`` written beside the checkpoint, so the web
        process never needs torch.
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
