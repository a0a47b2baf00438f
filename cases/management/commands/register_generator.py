"""Register a generator checkpoint (any format a worker loads) from its file and sidecar card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cases.models import GeneratorModel


class Command(BaseCommand):
    help = (
        "Store CHECKPOINT (a .pt with its .card.json beside it, as `python -m genworker ship` "
        "or `import-torchscript` write them) and list it among the generators."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("checkpoint", type=Path)
        parser.add_argument("--name", help="slug (default: the file's name)")
        parser.add_argument("--title", help="shown to educators (default: the file's name)")

    def handle(self, *args: Any, checkpoint: Path, **options: Any) -> None:
        card = checkpoint.with_suffix(".card.json")
        for path in (checkpoint, card):
            if not path.is_file():
                raise CommandError(f"no file at {path}")
        try:
            generator = GeneratorModel.register(
                checkpoint,
                name=options["name"] or checkpoint.stem,
                title=options["title"] or checkpoint.stem,
            )
        except (KeyError, ValueError) as exc:
            raise CommandError(f"{card.name} is not a generator card: {exc}") from exc
        self.stdout.write(f"{generator.name}: {generator.title} ({generator.sha256[:12]}…)")
