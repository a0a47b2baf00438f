"""The local folders of the embedded default (SQLite file, filesystem broker, media on disk),
made by the processes that use them rather than on importing the settings: a deployment on
PostgreSQL, Redis and object storage writes nothing under ``GANTRY_VAR_DIR``."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def local_folders() -> list[Path]:
    """The folders this configuration keeps on the local disk."""
    folders = []
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        folders += [Path(database["NAME"]).parent]
        test_name = database.get("TEST", {}).get("NAME")
        if test_name:
            folders.append(Path(test_name).parent)
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folders += [Path(options["data_folder_in"]), Path(options["control_folder"])]
    if settings.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
        folders.append(Path(settings.MEDIA_ROOT))
    return folders


def make_local_folders() -> None:
    for folder in local_folders():
        folder.mkdir(parents=True, exist_ok=True)
