"""``python -m genworker.cohorts``: build a simulated cohort or import images, write to disk.

python -m genworker.cohorts build brain-glioma --out DIR --resolution 128 --subjects 200
python -m genworker.cohorts import-dicom FOLDER --labels labels.csv --out DIR
python -m genworker.cohorts import-nifti VOLUME_OR_FOLDER... [--labels labels.csv] --out DIR
python -m genworker.cohorts import-medmnist pneumoniamnist.npz --labels normal,pneumonia --out DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from genworker.cohorts import Cohort
from genworker.cohorts.importers import (
    Imported,
    NothingImported,
    import_dicom,
    import_medmnist,
    import_nifti,
)
from genworker.cohorts.registry import BUILDERS, build_cohort
from genworker.cohorts.store import write_cohort


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m genworker.cohorts", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="simulate a cohort")
    build.add_argument("name", choices=sorted(BUILDERS))
    build.add_argument("--subjects", type=int, default=200, help="tracks (simulated subjects)")
    build.add_argument("--timepoints", type=int, default=5, help="images per track")
    build.add_argument("--seed", type=int, default=0)

    dicom = commands.add_parser("import-dicom", help="a folder of DICOM files + labels CSV")
    dicom.add_argument("folder")
    dicom.add_argument("--labels", required=True, help="CSV: file,finding[,severity,age,sex,track]")
    dicom.add_argument("--seed", type=int, default=0, help="seed of the held-out split")

    nifti = commands.add_parser("import-nifti", help="NIfTI volumes -> axial slices")
    nifti.add_argument("paths", nargs="+", help=".nii/.nii.gz files or folders")
    nifti.add_argument("--labels", help="optional CSV: file,finding[,severity,age,sex,track]")
    nifti.add_argument("--slices", type=int, default=8, help="axial slices per volume")
    nifti.add_argument("--modality", default="MR")
    nifti.add_argument("--seed", type=int, default=0, help="seed of the held-out split")

    medmnist = commands.add_parser("import-medmnist", help="MedMNIST .npz files as published")
    medmnist.add_argument("paths", nargs="+")
    medmnist.add_argument(
        "--labels", required=True, help="names of label values 0, 1, ... e.g. normal,pneumonia"
    )
    medmnist.add_argument("--modality", default="OT")

    for command in (build, dicom, nifti, medmnist):
        command.add_argument("--out", required=True, help="folder to write the cohort to")
        command.add_argument("--resolution", type=int, default=128)
    for command in (dicom, nifti, medmnist):
        command.add_argument("--name", help="cohort name (default: imported-<kind>)")
    return parser


def _import(args: argparse.Namespace) -> Imported:
    named = {"name": args.name} if args.name else {}
    if args.command == "import-dicom":
        return import_dicom(
            args.folder, args.labels, resolution=args.resolution, seed=args.seed, **named
        )
    if args.command == "import-nifti":
        return import_nifti(
            args.paths,
            resolution=args.resolution,
            labels_csv=args.labels,
            slices_per_volume=args.slices,
            modality=args.modality,
            seed=args.seed,
            **named,
        )
    return import_medmnist(
        args.paths,
        label_names=[n.strip() for n in args.labels.split(",")],
        resolution=args.resolution,
        modality=args.modality,
        **named,
    )


def _summary(cohort: Cohort) -> str:
    per_finding = ", ".join(
        f"{name} {int((cohort.finding == i).sum())}" for i, name in enumerate(cohort.findings)
    )
    return (
        f"{cohort.name}: {len(cohort.images)} images {cohort.resolution}x{cohort.resolution} "
        f"({per_finding}); held out {int(cohort.held_out.sum())}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    if args.command == "build":
        cohort = build_cohort(
            args.name,
            resolution=args.resolution,
            n_subjects=args.subjects,
            seed=args.seed,
            timepoints=args.timepoints,
        )
    else:
        try:
            cohort, skipped = _import(args)
        except NothingImported as error:
            for name, reason in error.skipped:
                print(f"skipped {name}: {reason}", file=sys.stderr)
            print("nothing could be imported", file=sys.stderr)
            return 1
        for name, reason in skipped:
            print(f"skipped {name}: {reason}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    manifest = write_cohort(cohort, args.out)
    print(f"{_summary(cohort)}; made in {elapsed:.1f} s; written to {manifest.parent}")
    return 0
