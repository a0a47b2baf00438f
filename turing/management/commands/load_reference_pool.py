"""Build a reference pool from the held-out part of a simulated training cohort (the demo's
stand-in for real images).

The images are *simulated*, not acquired: they come from the cohort simulator (real
anatomy templates plus simulated variability and disease), in the held-out split the
generators never trained on. Each is written as a DICOM file that says so in Image
Comments, stored with origin "cohort", and the pool's description says so too. For real
images, import DICOM into a pool instead.

A CLI, not the web process: it may import the generation engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from pydicom.uid import (
    ExplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from cases.imaging.blinding import MAX_VALUE, image_dataset, part10
from cases.models import ReferenceImage, ReferencePool

SOP_CLASS = {"MR": MRImageStorage}


def cohort_image_dicom(
    image: np.ndarray,  # display intensities [rows, cols] in [0, 1]
    *,
    modality: str,
    label: str,  # e.g. "brain-glioma seed 0 image 17"
) -> tuple[bytes, str]:
    """One held-out cohort image as DICOM bytes (and its SOP Instance UID)."""
    sop_uid = generate_uid(entropy_srcs=[label])
    values = np.round(np.clip(image, 0, 1) * MAX_VALUE).astype(np.uint16)
    ds = image_dataset(
        values,
        modality=modality,
        sop_class=SOP_CLASS.get(modality, SecondaryCaptureImageStorage),
        sop_uid=sop_uid,
        study_uid=generate_uid(entropy_srcs=[label, "study"]),
        series_uid=generate_uid(entropy_srcs=[label, "series"]),
    )
    ds.PatientName, ds.PatientID = "COHORT^SIMULATED", "COHORT"
    ds.SeriesDescription = "Held-out simulated cohort image"
    ds.ImageComments = (
        f"Simulated cohort image ({label}), held out from generator training; "
        "stands in for real images in the demo. Not acquired from a patient."
    )
    return part10(ds), sop_uid


@dataclass
class PoolImage:
    pixels: np.ndarray  # display intensities [rows, cols] in [0, 1]
    finding: str
    severity: float
    label: str  # names the image for its UIDs: the same image gets the same UIDs again
    file_name: str


def cohort_images(held: Any) -> Iterator[PoolImage]:
    """The held-out images of a single-image cohort (genworker.cohorts.Cohort)."""
    for i in range(len(held.images)):
        yield PoolImage(
            pixels=held.images[i],
            finding=held.findings[int(held.finding[i])],
            severity=float(held.severity[i]),
            label=f"{held.name} seed {held.seed} held-out image {i}",
            file_name=f"{held.name}-heldout-{i:04d}.dcm",
        )


def scan_images(scans: Any, acquire: Any) -> Iterator[PoolImage]:
    """The held-out scans of a multi-contrast cohort, one image per contrast, each acquired
    with its subject's noise (as a reader would see it); the contrasts of one scan follow
    each other, so any prefix of the pool holds them in equal numbers."""
    rng = np.random.default_rng(scans.seed)
    for i in np.flatnonzero(scans.held_out):
        noise = scans.noise[scans.track[i]]
        acquired = acquire(scans.clean[i].astype(np.float32), noise, rng)
        for c, contrast in enumerate(scans.channels):
            yield PoolImage(
                pixels=acquired[c],
                finding=scans.findings[int(scans.finding[i])],
                severity=float(scans.severity[i]),
                label=f"{scans.name} seed {scans.seed} held-out image {i} {contrast}",
                file_name=f"{scans.name}-heldout-{i:04d}-{contrast}.dcm",
            )


class Command(BaseCommand):
    help = "Build a reference pool from the held-out split of a simulated cohort."

    def add_arguments(self, parser):
        parser.add_argument("--cohort", default="brain-glioma", help="cohort simulator name")
        parser.add_argument("--folder", help="read a cohort written by genworker.cohorts")
        parser.add_argument("--resolution", type=int, default=128)
        parser.add_argument("--subjects", type=int, default=40, help="simulated subjects")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--limit", type=int, default=200, help="most images to keep")
        parser.add_argument("--pool", default="", help="pool name (default from the cohort)")

    def handle(self, *args: Any, **options: Any) -> None:
        from genworker.cohorts.registry import build_cohort
        from genworker.cohorts.store import read_cohort
        from genworker.latent.simulators import SIMULATORS

        try:
            if options["cohort"] in SIMULATORS and not options["folder"]:
                simulator = SIMULATORS[options["cohort"]]
                cohort = simulator.build(n_subjects=options["subjects"], seed=options["seed"])
                images = scan_images(cohort, simulator.acquire)
            else:
                cohort = (
                    read_cohort(options["folder"])
                    if options["folder"]
                    else build_cohort(
                        options["cohort"],
                        resolution=options["resolution"],
                        n_subjects=options["subjects"],
                        seed=options["seed"],
                    )
                )
                images = cohort_images(cohort.held_out_part())
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        if not cohort.held_out.any():
            raise CommandError("the cohort has no held-out images; simulate more subjects")
        name = options["pool"] or f"{cohort.name} held-out (seed {cohort.seed}, simulated)"
        pool, added = self._fill(images, name, modality=cohort.modality, limit=options["limit"])
        self.stdout.write(
            f"Pool {pool.name!r}: {added} image(s) added, {pool.images.count()} in all"
        )

    @transaction.atomic
    def _fill(
        self, images: Iterator[PoolImage], name: str, *, modality: str, limit: int
    ) -> tuple[ReferencePool, int]:
        pool, _ = ReferencePool.objects.get_or_create(
            name=name,
            defaults={
                "description": "Simulated images from the held-out split of a training cohort, "
                "standing in for real images in the demo; no patient data."
            },
        )
        for image in pool.images.filter(size=0):  # rows an earlier version left without it
            ReferenceImage.objects.filter(pk=image.pk).update(size=image.file.size)
        added = 0
        for _, held in zip(range(limit), images, strict=False):
            label = held.label
            data, sop_uid = cohort_image_dicom(held.pixels, modality=modality, label=label)
            digest = hashlib.sha256(sop_uid.encode()).hexdigest()
            if pool.images.filter(source_uid_digest=digest).exists():
                continue
            image = ReferenceImage(
                pool=pool,
                origin=ReferenceImage.Origin.COHORT,
                source_name=held.file_name,
                source_uid_digest=digest,
                study_uid=generate_uid(entropy_srcs=[label, "study"]),
                series_uid=generate_uid(entropy_srcs=[label, "series"]),
                sop_instance_uid=sop_uid,
                sop_class_uid=SOP_CLASS.get(modality, SecondaryCaptureImageStorage),
                transfer_syntax_uid=ExplicitVRLittleEndian,
                modality=modality,
                rows=held.pixels.shape[0],
                columns=held.pixels.shape[1],
                finding=held.finding,
                severity=held.severity,
                deidentification={"simulated": "no patient data: nothing to de-identify"},
                size=len(data),
            )
            image.file.save(f"reference/{pool.pk}/{digest[:16]}.dcm", ContentFile(data), save=False)
            image.save()
            added += 1
        return pool, added
