"""Import every file under a folder (zip archives expanded) into a reference pool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cases.models import ReferencePool
from cases.reference.dicom_import import import_files


def _files(folder: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        yield str(path.relative_to(folder)), path.read_bytes()


class Command(BaseCommand):
    help = "Import DICOM files from FOLDER into reference pool POOL (created if missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pool", help="pool name")
        parser.add_argument("folder", type=Path)

    def handle(self, *args: Any, pool: str, folder: Path, **options: Any) -> None:
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        target, created = ReferencePool.objects.get_or_create(name=pool)
        if created:
            self.stdout.write(f"created pool {pool!r}")
        report = import_files(target, _files(folder), user=None)
        for name, reason in report.refused:
            self.stdout.write(f"refused {name}: {reason}")
        for name in report.duplicates:
            self.stdout.write(f"duplicate {name}")
        self.stdout.write(
            f"{len(report.imported)} imported, {len(report.duplicates)} duplicate(s), "
            f"{len(report.refused)} refused"
        )
