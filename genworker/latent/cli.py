"""``python -m genworker latent``: train, ship and sample Gantry's latent models.

python -m genworker latent train brain-mri [--architectures stylegan2,cgan] [--max-minutes M]
    (resumes: call again to continue; under torchrun --nproc_per_node N it trains on N
    processes, see docs/engine.md)
python -m genworker latent ship brain-mri --architecture stylegan2
    (export fp16 + model card + grids per finding and channel into genworker/models)
python -m genworker latent sample MODEL --finding glioma --out grid.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from genworker.latent import training
from genworker.latent.grids import case_grid, save_png
from genworker.latent.model import DOMAINS, LatentModel, load_latent_model, save_latent_model
from genworker.latent.planning import PLACEMENTS
from genworker.latent.recipes import ARCHITECTURES, RECIPES, LatentRecipe, latent_recipe
from genworker.latent.runs import init_ranks

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"
RUNS_DIR = ROOT.parent / "var" / "runs"
GRID_SEVERITIES = (0.0, 0.25, 0.5, 0.75, 1.0)


def _architectures(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in chosen if name not in ARCHITECTURES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"architectures must be a comma-separated list of {', '.join(ARCHITECTURES)}"
        )
    return chosen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m genworker latent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a recipe's stages; resumes its run")
    train.add_argument("recipe", choices=sorted(RECIPES))
    train.add_argument("--architectures", type=_architectures, default=ARCHITECTURES)
    train.add_argument("--runs", type=Path, default=RUNS_DIR)
    train.add_argument("--workers", type=int, default=2, help="processes and threads to use")
    train.add_argument("--max-minutes", type=float, help="stop (resumably) after this long")
    train.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where the autoencoder, renderer and segmenter train (the anatomy GAN: the CPU)",
    )
    ship = commands.add_parser("ship", help="export a trained architecture with card and grids")
    ship.add_argument("recipe", choices=sorted(RECIPES))
    ship.add_argument("--architecture", choices=ARCHITECTURES, required=True)
    ship.add_argument("--runs", type=Path, default=RUNS_DIR)
    ship.add_argument("--models", type=Path, default=MODELS_DIR)
    sample = commands.add_parser("sample", help="a grid PNG: rows patients, columns severity")
    sample.add_argument("model", type=Path)
    sample.add_argument("--finding", required=True)
    sample.add_argument("--channel", help="which channel to show (default: the first)")
    sample.add_argument("--patients", type=int, default=4)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", type=Path, required=True)
    return parser


def _train(args: argparse.Namespace) -> int:
    recipe = latent_recipe(args.recipe)
    training.train_recipe(
        recipe,
        args.runs / recipe.name,
        architectures=args.architectures,
        workers=args.workers,
        max_minutes=args.max_minutes,
        ranks=init_ranks(args.device),
    )
    return 0


def model_card(recipe: LatentRecipe, architecture: str, run: Path) -> dict:
    """What a shipped model says of itself, from its recipe and its run's records."""
    domain = DOMAINS[recipe.cohort]
    stages = training.stage_records(recipe, run, architecture)
    cohort_manifest = json.loads((run / "cohort" / "manifest.json").read_text())
    return {
        "name": f"{recipe.name}-{architecture}",
        "engine": "latent",
        "architecture": architecture,
        "modality": domain.modality,
        "channels": list(domain.channels),
        "findings": list(domain.findings),
        "resolution": 256,
        "pixel_spacing_mm": domain.pixel_mm,
        "conditions": {
            "findings": list(domain.findings),
            "image": ["age", "sex"],
            "lesion": ["finding", "severity", "side", "location"],
            "narrative_only": ["comorbidities", "history"],
            "placement": placement_options(recipe.cohort),
        },
        "training": {
            "device": "cpu",
            "stages": stages,
            "wall_minutes": round(sum(s["wall_seconds"] for s in stages.values()) / 60, 1),
            "cpu_minutes": round(sum(s["cpu_seconds"] for s in stages.values()) / 60, 1),
            "budget_wall_minutes_on_two_cores": recipe.cpu_minutes,
        },
        "cohort": {
            "name": recipe.cohort,
            "subjects": recipe.subjects,
            "extra_normal_subjects": recipe.extra_normals,
            "seed": recipe.cohort_seed,
            "provenance": cohort_manifest["provenance"],
        },
    }


def placement_options(cohort: str) -> dict[str, dict[str, list[str]]]:
    """Where the model can put each finding: the planner's sides and locations."""
    return {
        finding: {"sides": list(sides), "locations": list(locations)}
        for finding, (sides, locations) in PLACEMENTS[cohort].items()
    }


def _ship(args: argparse.Namespace) -> int:
    recipe = latent_recipe(args.recipe)
    run = args.runs / recipe.name
    parts = training.trained_parts(recipe, run, args.architecture)
    args.models.mkdir(parents=True, exist_ok=True)
    path = args.models / f"{recipe.name}-{args.architecture}.pt"
    save_latent_model(
        path,
        domain=DOMAINS[recipe.cohort],
        autoencoder=parts["autoencoder"],
        anatomy=parts["anatomy"],
        renderer=parts["renderer"],
        segmenter=parts["segmenter"],
        card=model_card(recipe, args.architecture, run),
    )
    model = load_latent_model(path)
    for finding in model.domain.findings:
        write_grids(model, finding, path.with_suffix(""), patients=4, seed=0)
    print(f"shipped {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def write_grids(model: LatentModel, finding: str, stem: Path, *, patients: int, seed: int) -> None:
    """One PNG per channel: rows patients, columns severity, planned lesion outlined."""
    started = time.perf_counter()
    grid = case_grid(model, finding, GRID_SEVERITIES, patients=patients, seed=seed)
    for c, channel in enumerate(model.domain.channels):
        save_png(grid.channel(c), Path(f"{stem}.{finding}.{channel}.png"))
    print(f"grids of {finding}: {time.perf_counter() - started:.1f} s")


def _sample(args: argparse.Namespace) -> int:
    model = load_latent_model(args.model)
    channel = args.channel or model.domain.channels[0]
    if channel not in model.domain.channels:
        print(f"error: channel must be one of {list(model.domain.channels)}", file=sys.stderr)
        return 2
    if args.finding not in model.domain.findings:
        print(f"error: finding must be one of {list(model.domain.findings)}", file=sys.stderr)
        return 2
    grid = case_grid(model, args.finding, GRID_SEVERITIES, patients=args.patients, seed=args.seed)
    save_png(grid.channel(model.domain.channels.index(channel)), args.out)
    return 0


COMMANDS = {"train": _train, "ship": _ship, "sample": _sample}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(max(1, getattr(args, "workers", 2)))
    np.set_printoptions(precision=4)
    return COMMANDS[args.command](args)
