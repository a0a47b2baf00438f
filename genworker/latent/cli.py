"""``python -m genworker latent``: train, ship and sample Gantry's latent models.

python -m genworker latent train brain-mri [--architectures stylegan2,cgan] [--max-minutes M]
    (resumes: call again to continue; under torchrun --nproc_per_node N it trains on N
    processes, see docs/engine.md)
python -m genworker latent ship brain-mri --architecture stylegan2
    (export fp16 + model card + grids per finding and channel into genworker/models)
python -m genworker latent retrain-anatomy chest-radiograph --architecture stylegan2
    (a shipped model's anatomy GAN trained anew by the recipe on the model's own other
    networks; resumes; then `latent evaluate` it again)
python -m genworker latent retrain-renderer brain-mri [--architectures stylegan2,cgan]
    (the same for the lesion renderer, trained once for the shipped models that share their
    autoencoder and detail network, with its lesion gain where the recipe has one)
python -m genworker latent fit-lesion-gain brain-mri [--architectures stylegan2,cgan]
    (fit the shipped models' lesion gain to the renderer they share; then `latent evaluate`
    them again)
python -m genworker latent calibrate chest-radiograph --architecture stylegan2
    (fit a shipped model's anatomy GAN's calibration to the grids it trained on; then
    `latent evaluate` it again)
python -m genworker latent train-anatomy-reader chest-radiograph --architecture stylegan2
    (train a shipped model's anatomy reader, where its recipe has one, once for the recipe's
    models; resumes; then `latent evaluate` it again)
python -m genworker latent sample MODEL --finding glioma --out grid.png
python -m genworker latent features brain-mri [--seeds 5]
    (train the fixed feature space of the Fréchet distance, measure its stability, ship it)
python -m genworker latent evaluate brain-mri --architecture stylegan2 [--cases 200] [--seeds 5]
    (figures against fresh simulated patients, into the model card and <name>.report.md)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from genworker.checkpoint import card_path, sha256_file
from genworker.latent import evaluation, feature_space, training
from genworker.latent.grids import case_grid, save_png
from genworker.latent.model import (
    DOMAINS,
    CaseRejected,
    LatentModel,
    load_latent_model,
    save_latent_model,
)
from genworker.latent.planning import PLACEMENTS
from genworker.latent.recipes import ARCHITECTURES, RECIPES, LatentRecipe, latent_recipe
from genworker.latent.report import write_report
from genworker.latent.runs import init_ranks
from genworker.latent.simulators import SIMULATORS

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
        help="where every stage trains (cuda: one GPU per torchrun rank)",
    )
    ship = commands.add_parser("ship", help="export a trained architecture with card and grids")
    ship.add_argument("recipe", choices=sorted(RECIPES))
    ship.add_argument("--architecture", choices=ARCHITECTURES, required=True)
    ship.add_argument("--runs", type=Path, default=RUNS_DIR)
    ship.add_argument("--models", type=Path, default=MODELS_DIR)
    retrain = commands.add_parser(
        "retrain-anatomy", help="train a shipped model's anatomy GAN anew; resumes its run"
    )
    retrain.add_argument("--architecture", choices=ARCHITECTURES, required=True)
    _retrain_options(retrain)
    renderer = commands.add_parser(
        "retrain-renderer", help="train shipped models' lesion renderer anew; resumes its run"
    )
    renderer.add_argument("--architectures", type=_architectures, default=ARCHITECTURES)
    _retrain_options(renderer)
    gain = commands.add_parser(
        "fit-lesion-gain",
        help="fit shipped models' lesion gain to their renderer on the held-out lesions",
    )
    gain.add_argument("--architectures", type=_architectures, default=ARCHITECTURES)
    _retrain_options(gain)
    calibrate = commands.add_parser(
        "calibrate", help="fit a shipped model's anatomy GAN's calibration to its training grids"
    )
    calibrate.add_argument("--architecture", choices=ARCHITECTURES, required=True)
    _retrain_options(calibrate)
    reading = commands.add_parser(
        "train-anatomy-reader",
        help="train a shipped model's anatomy reader (what lesions are planned on)",
    )
    reading.add_argument("--architecture", choices=ARCHITECTURES, required=True)
    _retrain_options(reading)
    sample = commands.add_parser("sample", help="a grid PNG: rows patients, columns severity")
    sample.add_argument("model", type=Path)
    sample.add_argument("--finding", required=True)
    sample.add_argument("--channel", help="which channel to show (default: the first)")
    sample.add_argument("--patients", type=int, default=4)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", type=Path, required=True)
    sizes = commands.add_parser(
        "yield", help="how many one-image cases a model makes at each severity (image check)"
    )
    sizes.add_argument("model", type=Path)
    sizes.add_argument("--finding", required=True)
    sizes.add_argument("--severities", type=float, nargs="+", required=True)
    sizes.add_argument("--patients", type=int, default=60)
    sizes.add_argument("--seed", type=int, default=0)
    features = commands.add_parser(
        "features", help="train, measure and ship the fixed feature space of the FD"
    )
    features.add_argument("recipe", choices=sorted(RECIPES))
    features.add_argument("--subjects", type=int, default=96, help="lesion subjects to learn")
    features.add_argument("--test-subjects", type=int, default=40, help="per stability set")
    features.add_argument("--steps", type=int, default=600)
    features.add_argument("--seeds", type=int, default=5, help="training seeds to compare")
    features.add_argument("--workers", type=int, default=2)
    features.add_argument("--models", type=Path, default=MODELS_DIR)
    evaluate = commands.add_parser("evaluate", help="figures against fresh simulated patients")
    evaluate.add_argument("recipe", choices=sorted(RECIPES))
    evaluate.add_argument("--architecture", choices=ARCHITECTURES, required=True)
    evaluate.add_argument("--cases", type=int, default=200, help="lesion cases (+ half normal)")
    evaluate.add_argument("--seeds", type=int, default=5)
    evaluate.add_argument("--timepoints", type=int, default=evaluation.TIMEPOINTS)
    evaluate.add_argument("--workers", type=int, default=2)
    evaluate.add_argument("--models", type=Path, default=MODELS_DIR)
    return parser


def _retrain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--runs", type=Path, default=RUNS_DIR)
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--workers", type=int, default=2, help="processes and threads to use")
    parser.add_argument("--max-minutes", type=float, help="stop (resumably) after this long")


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
    if recipe.anatomy_reader_channels:
        stages["anatomy_reader"] = training.anatomy_reader_record(run)
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
            **stage_totals(stages),
            "budget_wall_minutes_on_two_cores": recipe.cpu_minutes,
            **(
                {"anatomy_calibration": training.calibration_record(run / architecture)}
                if architecture in recipe.anatomy_calibration
                else {}
            ),
            **({"lesion_gain": training.lesion_gain_record(run)} if recipe.lesion_gain else {}),
        },
        "cohort": {
            "name": recipe.cohort,
            "subjects": recipe.subjects,
            "extra_normal_subjects": recipe.extra_normals,
            "seed": recipe.cohort_seed,
            "provenance": cohort_manifest["provenance"],
        },
    }


def stage_totals(stages: dict[str, dict]) -> dict[str, float]:
    """A model's wall and CPU minutes: its stages' summed."""
    return {
        "wall_minutes": round(sum(s["wall_seconds"] for s in stages.values()) / 60, 1),
        "cpu_minutes": round(sum(s["cpu_seconds"] for s in stages.values()) / 60, 1),
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
        card=model_card(recipe, args.architecture, run),
        **parts,
    )
    write_model_grids(path)
    print(f"shipped {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def write_model_grids(path: Path) -> None:
    """The grids of every finding of the model shipped at ``path``, beside it."""
    model = load_latent_model(path)
    for finding in model.domain.findings:
        write_grids(model, finding, path.with_suffix(""), patients=4, seed=0)


def write_grids(model: LatentModel, finding: str, stem: Path, *, patients: int, seed: int) -> None:
    """One PNG per channel: rows patients, columns severity, planned lesion outlined."""
    started = time.perf_counter()
    grid = case_grid(model, finding, GRID_SEVERITIES, patients=patients, seed=seed)
    for c, channel in enumerate(model.domain.channels):
        save_png(grid.channel(c), Path(f"{stem}.{finding}.{channel}.png"))
    print(
        f"grids of {finding}: {len(grid.images)} patients of {grid.candidates} drawn, "
        f"{time.perf_counter() - started:.1f} s"
    )


def _shipped(
    args: argparse.Namespace, doing: str
) -> tuple[LatentRecipe, Path, LatentModel, Path] | None:
    """The recipe, the shipped model's path, the model and the run folder of its anatomy GAN
    (the recipe's cohort and normals, encoded by the model's own networks); None, with the
    error said, where the model is missing."""
    recipe = latent_recipe(args.recipe)
    path = args.models / f"{recipe.name}-{args.architecture}.pt"
    if not path.exists():
        print(f"error: {path} is missing: nothing to {doing}", file=sys.stderr)
        return None
    run = args.runs / f"{recipe.name}-{args.architecture}-anatomy"
    return recipe, path, load_latent_model(path), run


def _retrain_anatomy(args: argparse.Namespace) -> int:
    shipped = _shipped(args, "retrain")
    if shipped is None:
        return 2
    recipe, path, model, run = shipped
    anatomy, finished = training.retrain_anatomy(
        recipe,
        run,
        model.autoencoder,
        model.detail,
        args.architecture,
        workers=args.workers,
        max_minutes=args.max_minutes,
    )
    if not finished:
        print(f"{run} is not finished: run the same command again to continue")
        return 0
    records = training.stage_records(recipe, run, args.architecture, stages=("anatomy",))
    card, calibrated = retrained_card(_card(path), records), None
    # Where the recipe does not calibrate this architecture, the old calibration (fitted
    # to the old GAN) is dropped.
    if args.architecture in recipe.anatomy_calibration:
        card = calibrated_card(card, run / args.architecture)
        calibrated = training.load_calibration(run / args.architecture / training.CALIBRATION)
    _ship_retrained(path, model, card, anatomy=anatomy, calibration=calibrated)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    shipped = _shipped(args, "calibrate")
    if shipped is None:
        return 2
    recipe, path, model, run = shipped
    folder = run / f"calibration-{_digest(model, ('anatomy', 'detail'))[:12]}"
    try:
        fitted = training.calibrate_anatomy(
            recipe,
            run,
            model.autoencoder,
            model.detail,
            model.anatomy,
            folder,
            workers=args.workers,
        )
    except ValueError as error:  # too few subjects for the grid's cells
        print(f"error: {error}", file=sys.stderr)
        return 2
    card = calibrated_card(retrained_card(_card(path), {}), folder)
    _ship_retrained(path, model, card, calibration=fitted)
    return 0


def _train_anatomy_reader(args: argparse.Namespace) -> int:
    recipe = latent_recipe(args.recipe)
    if not recipe.anatomy_reader_channels:
        print(f"error: the recipe {recipe.name} reads no anatomy from its images", file=sys.stderr)
        return 2
    shipped = _shipped(args, "give a reader")
    if shipped is None:
        return 2
    _, path, model, _ = shipped
    # It learns from the simulation alone, so the recipe's models share one.
    folder = args.runs / f"{recipe.name}-anatomy-reader"
    folder.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.workers)
    reader = training.stage_anatomy_reader(recipe, folder, args.workers, args.max_minutes)
    if not (folder / training.ANATOMY_READER).exists():
        print(f"the anatomy reader is not finished: run this again to continue ({folder})")
        return 0
    record = {"anatomy_reader": training.anatomy_reader_record(folder)}
    card = retrained_card(_card(path), record, how="on the simulation, after the other stages")
    _ship_retrained(path, model, card, anatomy_reader=reader)
    return 0


def _sharing(
    args: argparse.Namespace, shared: Sequence[str], doing: str
) -> tuple[LatentRecipe, list[Path], list[LatentModel], str] | None:
    """The recipe, the paths and models of ``args.architectures`` and the digest of the
    ``shared`` parts they have in common; None, with the error said, where a model is missing
    or their ``shared`` parts differ."""
    recipe = latent_recipe(args.recipe)
    paths = [args.models / f"{recipe.name}-{a}.pt" for a in args.architectures]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        print(f"error: {', '.join(missing)} missing: nothing to {doing}", file=sys.stderr)
        return None
    models = [load_latent_model(path) for path in paths]
    digests = {_digest(model, shared) for model in models}
    if len(digests) > 1:
        print(
            f"error: these models do not share their {_in_words(shared)}: {doing} each "
            "one alone (--architectures)",
            file=sys.stderr,
        )
        return None
    return recipe, paths, models, digests.pop()


def _in_words(parts: Sequence[str]) -> str:
    words = [{"detail": "detail network", "renderer": "lesion renderer"}.get(p, p) for p in parts]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else words[0]


def _retrain_renderer(args: argparse.Namespace) -> int:
    sharing = _sharing(args, ("autoencoder", "detail"), "retrain")
    if sharing is None:
        return 2
    recipe, paths, models, digest = sharing
    # The run is named by what it learns from, so models that share it share the run.
    run = args.runs / f"{recipe.name}-renderer-{digest[:12]}"
    renderer, finished = training.retrain_renderer(
        recipe,
        run,
        models[0].autoencoder,
        models[0].detail,
        workers=args.workers,
        max_minutes=args.max_minutes,
    )
    if not finished:
        print(f"{run} is not finished: run the same command again to continue")
        return 0
    records = training.stage_records(recipe, run, "", stages=("renderer",))
    # The old gain was fitted to the old renderer: the new one's replaces it, or none.
    gain = training.load_lesion_gain(run / training.LESION_GAIN) if recipe.lesion_gain else None
    for path, model in zip(paths, models, strict=True):
        card = gained_card(retrained_card(_card(path), records), run if gain else None)
        _ship_retrained(path, model, card, renderer=renderer, lesion_gain=gain)
    return 0


def _fit_lesion_gain(args: argparse.Namespace) -> int:
    recipe = latent_recipe(args.recipe)
    if not recipe.lesion_gain:
        print(f"error: the recipe {recipe.name} draws its lesions without a gain", file=sys.stderr)
        return 2
    shared = ("autoencoder", "detail", "renderer")
    sharing = _sharing(args, shared, "fit a lesion gain for")
    if sharing is None:
        return 2
    _, paths, models, digest = sharing
    run = args.runs / f"{recipe.name}-lesion-gain-{digest[:12]}"
    first = models[0]
    try:
        gain = training.fit_lesion_gain(
            recipe, run, first.autoencoder, first.detail, first.renderer, workers=args.workers
        )
    except ValueError as error:  # no lesion to fit on, or a renderer that draws none
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path, model in zip(paths, models, strict=True):
        card = gained_card(retrained_card(_card(path), {}), run)
        _ship_retrained(path, model, card, lesion_gain=gain)
    return 0


def _digest(model: LatentModel, parts: Sequence[str]) -> str:
    """sha256 of the weights of ``model``'s ``parts``."""
    digest = hashlib.sha256()
    for part in parts:
        for name, value in getattr(model, part).state_dict().items():
            digest.update(f"{part}.{name}".encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _card(path: Path) -> dict:
    return json.loads(card_path(path).read_text())


PARTS = (
    "autoencoder",
    "anatomy",
    "detail",
    "renderer",
    "segmenter",
    "calibration",
    "anatomy_reader",
    "lesion_gain",
)


def _ship_retrained(
    path: Path, model: LatentModel, card: dict, **retrained: torch.nn.Module | None
) -> None:
    """Save the model at ``path`` with its ``retrained`` parts (a calibration of None drops
    the model's) and ``card``, its grids drawn again and its report (which judged the old
    parts) removed."""
    parts = {part: retrained.get(part, getattr(model, part)) for part in PARTS}
    save_latent_model(path, domain=model.domain, card=card, **parts)
    path.with_suffix(".report.md").unlink(missing_ok=True)
    write_model_grids(path)
    print(f"shipped {path}: evaluate it again (`latent evaluate ...`)")


def calibrated_card(card: dict, folder: Path) -> dict:
    """``card`` with the record of the calibration fitted into ``folder``."""
    record = training.calibration_record(folder)
    return {**card, "training": {**card["training"], "anatomy_calibration": record}}


def gained_card(card: dict, folder: Path | None) -> dict:
    """``card`` with the record of the lesion gain fitted into ``folder`` (None: without
    one)."""
    training_record = {k: v for k, v in card["training"].items() if k != "lesion_gain"}
    if folder is not None:
        training_record["lesion_gain"] = training.lesion_gain_record(folder)
    return {**card, "training": training_record}


def retrained_card(
    card: dict,
    records: dict[str, dict],
    how: str = "on this model's own autoencoder and detail network",
) -> dict:
    """The card of a model whose stages in ``records`` were trained anew (``how``): their
    times, the totals again, which stages were retrained, and no evaluation (it judged the
    old ones)."""
    kept = {
        key: value for key, value in card.items() if key not in ("evaluation", "file", "sha256")
    }
    stages = {**card["training"]["stages"], **records}
    kept["training"] = {
        **card["training"],
        "stages": stages,
        **stage_totals(stages),
        **{f"{stage}_retrained": how for stage in records},
    }
    return kept


def _sample(args: argparse.Namespace) -> int:
    model = load_latent_model(args.model)
    channel = args.channel or model.domain.channels[0]
    if channel not in model.domain.channels:
        print(f"error: channel must be one of {list(model.domain.channels)}", file=sys.stderr)
        return 2
    if args.finding not in model.domain.findings:
        print(f"error: finding must be one of {list(model.domain.findings)}", file=sys.stderr)
        return 2
    try:
        grid = case_grid(
            model, args.finding, GRID_SEVERITIES, patients=args.patients, seed=args.seed
        )
    except CaseRejected as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    save_png(grid.channel(model.domain.channels.index(channel)), args.out)
    return 0


def _yield(args: argparse.Namespace) -> int:
    if args.patients < 1 or not all(0 < s <= 1 for s in args.severities):
        print("error: ask at least 1 patient and severities in (0, 1]", file=sys.stderr)
        return 2
    model = load_latent_model(args.model)
    if args.finding not in model.domain.findings or args.finding == "normal":
        lesions = [f for f in model.domain.findings if f != "normal"]
        print(f"error: finding must be one of {lesions}", file=sys.stderr)
        return 2
    for severity in args.severities:
        counts = evaluation.yield_at(
            model, args.finding, severity, patients=args.patients, seed=args.seed
        )
        print(
            f"{args.finding} at severity {severity:g}: {counts['made']} of {counts['asked']} "
            f"cases made, {counts['first_plan']} on their first plan"
        )
    return 0


def hardware() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__} on {torch.get_num_threads()} threads"
    )


def features_path(models: Path, cohort: str) -> Path:
    return models / f"{cohort}.features.pt"


def _features(args: argparse.Namespace) -> int:
    recipe = latent_recipe(args.recipe)
    started = time.perf_counter()
    data, stability_sets = feature_space_data(recipe.cohort, args)
    simulator = SIMULATORS[recipe.cohort]
    config = feature_space.FeatureSpaceConfig(
        image_channels=len(simulator.CONTRASTS), anatomy_channels=len(simulator.ANATOMY_MAPS)
    )
    nets = [
        feature_space.train_feature_space(
            data, config, simulator.acquire, steps=args.steps, seed=seed
        )
        for seed in range(args.seeds)
    ]
    measured = feature_space.stability(nets, *stability_sets)
    card = {
        "cohort": recipe.cohort,
        "trained_on": f"{len(data.clean)} acquired images of {args.subjects} lesion and "
        f"{args.subjects // 2} normal subjects simulated from seed {FEATURE_SEED}",
        "steps": args.steps,
        "features": "predicted tissue and lesion shares on an 8x8 grid, noise, age",
        "stability_over_training_seeds": measured,
        "command": args.command_line,
        "hardware": hardware(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    path = features_path(args.models, recipe.cohort)
    feature_space.save_feature_space(nets[0], path, card)
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    for key, figure in measured.items():
        print(f"{key}: mean {figure['mean']:.3f}, spread {100 * figure['spread']:.1f}%")
    print(f"shipped {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


FEATURE_SEED = 31_337  # the feature space learns from this stream; its tests use the next two


def feature_space_data(cohort: str, args: argparse.Namespace) -> tuple:
    """The training data, and the (held-out, reference, shifted references) images the
    stability is measured on: two further simulated samples, the second also noise-free,
    blurred, and with a steeper contrast curve."""
    simulator = SIMULATORS[cohort]
    learn = evaluation.fresh_subjects(cohort, FEATURE_SEED, args.subjects, 3)
    data = feature_space.FeatureData.of(list(evaluation.simulate(learn, args.workers)))
    rng = np.random.default_rng(FEATURE_SEED)
    samples = []
    for offset in (1, 2):
        subjects = evaluation.fresh_subjects(cohort, FEATURE_SEED + offset, args.test_subjects, 3)
        tracks = list(evaluation.simulate(subjects, args.workers))
        clean = np.concatenate([t.clean for t in tracks]).astype(np.float32)
        noise = np.concatenate([np.repeat(t.noise[None], len(t.clean), 0) for t in tracks])
        samples.append((clean, noise))

    def acquired(clean: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return np.stack(
            [simulator.acquire(c, n, rng) for c, n in zip(clean, noise, strict=True)]
        ).astype(np.float16)

    (held_clean, held_noise), (ref_clean, ref_noise) = samples
    shifted = {
        "noise_free": ref_clean.astype(np.float16),
        "blurred": acquired(ndimage.gaussian_filter(ref_clean, (0, 0, 1.5, 1.5)), ref_noise),
        "steeper": acquired(ref_clean**1.3, ref_noise),
    }
    return data, (acquired(held_clean, held_noise), acquired(ref_clean, ref_noise), shifted)


def _evaluate(args: argparse.Namespace) -> int:
    recipe = latent_recipe(args.recipe)
    path = args.models / f"{recipe.name}-{args.architecture}.pt"
    space = features_path(args.models, recipe.cohort)
    for needed, command in (
        (path, f"latent ship {recipe.name} --architecture {args.architecture}"),
        (space, f"latent features {recipe.name}"),
    ):
        if not needed.exists():
            print(f"error: {needed} is missing: `python -m genworker {command}`", file=sys.stderr)
            return 2
    if args.cases < 2 or args.seeds < 1 or args.timepoints < 2:
        print("error: evaluate at least 2 cases, 1 seed and 2 timepoints", file=sys.stderr)
        return 2
    model = load_latent_model(path)
    features, _ = feature_space.load_feature_space(space)
    result = evaluation.evaluate(
        model,
        recipe,
        features,
        cases=args.cases,
        seeds=tuple(range(args.seeds)),
        timepoints=args.timepoints,
        workers=args.workers,
        log=print,
    )
    command = args.command_line
    result["command"] = command
    result["hardware"] = hardware()
    result["feature_space"] = {"file": space.name, "sha256": sha256_file(space)}
    card_file = card_path(path)
    card = json.loads(card_file.read_text())
    card["evaluation"] = result
    card_file.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    report = write_report(
        result,
        path.with_suffix(".report.md"),
        title=path.stem,
        command=command,
        hardware=result["hardware"],
        channels=list(model.domain.channels),
    )
    for row in result["targets"]:
        print(f"{row['figure']}: {row['value']} (target {row['target']}, met: {row['met']})")
    print(f"wrote {card_file} and {report}")
    return 0


COMMANDS = {
    "train": _train,
    "ship": _ship,
    "retrain-anatomy": _retrain_anatomy,
    "retrain-renderer": _retrain_renderer,
    "fit-lesion-gain": _fit_lesion_gain,
    "calibrate": _calibrate,
    "train-anatomy-reader": _train_anatomy_reader,
    "sample": _sample,
    "features": _features,
    "evaluate": _evaluate,
    "yield": _yield,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.command_line = "python -m genworker latent " + shlex.join(argv)
    torch.set_num_threads(max(1, getattr(args, "workers", 2)))
    np.set_printoptions(precision=4)
    return COMMANDS[args.command](args)
