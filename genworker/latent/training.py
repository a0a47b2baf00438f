"""Training a latent model end to end, stage by stage, resumable at every point.

``train_recipe`` simulates (or reads) the recipe's cohort and extra normal subjects into the
run folder, then trains the autoencoder, the segmenter, the detail network, the lesion
renderer (which may learn on the detail network's redraws; its lesion gain is fitted after
it where the recipe asks for one), the anatomy reader (where the recipe asks for one) and
the anatomy GAN of each requested architecture (with its calibration, where the recipe asks
for one); a stage already finished is skipped and a stage cut short by ``max_minutes``
continues where it stopped when called again. Each stage's state records its wall and CPU
time, which the model card reports.

Under torchrun (``ranks``) rank 0 simulates the cohort and writes every file; every stage,
the anatomy GANs included, trains data-parallel on every rank (:mod:`genworker.latent.runs`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from genworker.cohorts.scans import ScanCohort, load_scans, save_scans
from genworker.latent import anatomy_gan, anatomy_reader, calibration, lesion_gain
from genworker.latent.autoencoder import (
    Autoencoder,
    AutoencoderData,
    encode_all,
    train_autoencoder,
)
from genworker.latent.detail import DetailNet, coarse_all, held_out_l1, redraw_all, train_detail
from genworker.latent.evaluation import RING_MM
from genworker.latent.recipes import LatentRecipe
from genworker.latent.renderer import LesionRenderer, RendererData, train_renderer
from genworker.latent.runs import ALONE, Ranks
from genworker.latent.segmenter import Segmenter, SegmenterData, train_segmenter
from genworker.latent.simulators import SIMULATORS
from genworker.networks import ConditionalGenerator, GeneratorConfig, build_generator

RESOLUTION = 256  # the side of every latent model's images


@dataclass
class Normals:
    """Extra normal subjects for the anatomy GAN."""

    clean: np.ndarray  # float16 [K, C, R, R]
    anatomy: np.ndarray  # float16 [K, A, R, R]
    age: np.ndarray  # float32 [K]
    sex: np.ndarray  # int8 [K]


def _normal_subject(name: str, seed: int, index: int) -> tuple:
    track = SIMULATORS[name].subject_track(seed, index, 1, finding=0)
    return track.normal.astype(np.float16), track.anatomy.astype(np.float16), track.age, track.sex


def simulate_normals(name: str, n: int, seed: int, workers: int) -> Normals:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max(1, workers)) as pool:
        found = list(pool.map(_normal_subject, [name] * n, [seed] * n, range(n), chunksize=8))
    return Normals(
        clean=np.stack([f[0] for f in found]),
        anatomy=np.stack([f[1] for f in found]),
        age=np.array([f[2] for f in found], np.float32),
        sex=np.array([f[3] for f in found], np.int8),
    )


def cohort_for(recipe: LatentRecipe, run: Path, workers: int) -> ScanCohort:
    folder = run / "cohort"
    if (folder / "manifest.json").exists():
        return load_scans(folder)
    started = time.perf_counter()
    cohort = SIMULATORS[recipe.cohort].build(
        n_subjects=recipe.subjects,
        seed=recipe.cohort_seed,
        timepoints=recipe.timepoints,
        workers=workers,
    )
    save_scans(cohort, folder)
    _record(run, "cohort_seconds", time.perf_counter() - started)
    return cohort


def normals_for(recipe: LatentRecipe, run: Path, workers: int) -> Normals:
    path = run / "normals.npz"
    if path.exists():
        with np.load(path) as saved:
            return Normals(**{key: saved[key] for key in ("clean", "anatomy", "age", "sex")})
    started = time.perf_counter()
    normals = simulate_normals(recipe.cohort, recipe.extra_normals, recipe.normals_seed, workers)
    np.savez(path, **normals.__dict__)
    _record(run, "normals_seconds", time.perf_counter() - started)
    return normals


def _record(run: Path, key: str, value: float) -> None:
    path = run / "times.json"
    times = json.loads(path.read_text()) if path.exists() else {}
    times[key] = value
    path.write_text(json.dumps(times, indent=2) + "\n")


def autoencoder_data(cohort: ScanCohort, normals: Normals) -> AutoencoderData:
    """Training images: the cohort's train split (every timepoint) and each train track's
    normal image, plus the extra normals; anatomy targets where the image is normal."""
    train = ~cohort.held_out
    tracks = np.unique(cohort.track[train])
    images = np.concatenate([cohort.clean[train], cohort.normal[tracks], normals.clean])
    anatomy = np.concatenate(
        [cohort.anatomy[cohort.track[train]], cohort.anatomy[tracks], normals.anatomy]
    )
    has_anatomy = np.concatenate(
        [cohort.severity[train] == 0, np.ones(len(tracks) + len(normals.clean), bool)]
    )
    near = np.stack([ndimage.binary_dilation(mask, iterations=8) for mask in cohort.masks[train]])
    lesions = np.concatenate(
        [near, np.zeros((len(tracks) + len(normals.clean), *near.shape[1:]), bool)]
    )
    return AutoencoderData(images, anatomy, has_anatomy, lesions)


def stage_autoencoder(
    recipe: LatentRecipe, run: Path, data: AutoencoderData, *, ranks: Ranks = ALONE, **kw
) -> Autoencoder:
    model, progress = train_autoencoder(
        data,
        recipe.autoencoder,
        out_dir=run,
        steps=recipe.autoencoder_steps,
        seed=recipe.train_seed,
        ranks=ranks,
        **kw,
    )
    _keep(
        model,
        run / FINAL["autoencoder"],
        ranks.is_main and progress.step >= recipe.autoencoder_steps,
    )
    return model.eval().requires_grad_(False)


# The state file of each stage (resumable training) and the file of its finished network.
STATES = {
    "autoencoder": "autoencoder-state.pt",
    "renderer": "renderer-state.pt",
    "segmenter": "segmenter-state.pt",
    "detail": "detail-state.pt",
    "anatomy": "anatomy-gan-state.pt",  # inside the architecture's folder
}
FINAL = {
    "autoencoder": "autoencoder.pt",
    "renderer": "renderer.pt",
    "segmenter": "segmenter.pt",
    "detail": "detail.pt",
    "anatomy": "anatomy.pt",  # inside the architecture's folder
}


def _keep(model: torch.nn.Module, path: Path, finished: bool) -> None:
    """Save a stage's finished network (weights only) for shipping; atomically, as another
    process resuming the same run may read it."""
    if finished:
        temporary = path.with_suffix(".tmp")
        torch.save(model.state_dict(), temporary)
        os.replace(temporary, path)


def anatomy_config(recipe: LatentRecipe, architecture: str) -> GeneratorConfig:
    """The anatomy GAN draws the coarse grid: the latent grid's side / the detail factor."""
    return GeneratorConfig(
        architecture=architecture,
        resolution=RESOLUTION // recipe.autoencoder.factor // recipe.detail.factor,
        findings=anatomy_gan.ANATOMY_FINDINGS,
        img_channels=recipe.autoencoder.latent_channels,
        **recipe.anatomy,
    )


def normal_latents(
    run: Path, autoencoder: Autoencoder, cohort: ScanCohort, normals: Normals
) -> anatomy_gan.AnatomyData:
    """The full latents of every normal training subject (the cohort's train tracks before
    their finding, and the extra normals), with age and sex; encoded once into the run."""
    path = run / "normal-latents.npz"
    if path.exists():
        with np.load(path) as saved:
            return anatomy_gan.AnatomyData(saved["latents"], saved["age"], saved["sex"])
    train_tracks = np.unique(cohort.track[~cohort.held_out])
    first = np.array([np.flatnonzero(cohort.track == t)[0] for t in train_tracks])
    data = anatomy_gan.AnatomyData(
        latents=encode_all(
            autoencoder, np.concatenate([cohort.normal[train_tracks], normals.clean])
        ),
        age=np.concatenate([cohort.age[first], normals.age]),
        sex=np.concatenate([cohort.sex[first], normals.sex]).astype(np.int64),
    )
    np.savez(path, latents=data.latents, age=data.age, sex=data.sex)
    return data


DETAIL_HELD_OUT = 0.05  # share of the normal latents the detail network never trains on


def stage_detail(
    recipe: LatentRecipe, run: Path, latents: np.ndarray, *, ranks: Ranks = ALONE, **kw
) -> DetailNet:
    """Train the detail network on all but the last ``DETAIL_HELD_OUT`` of the normal
    latents; its L1 on those (and plain upsampling's) goes into the run's records."""
    held = max(1, int(len(latents) * DETAIL_HELD_OUT))
    model, progress = train_detail(
        latents[:-held],
        recipe.detail,
        out_dir=run,
        steps=recipe.detail_steps,
        lr_floor=recipe.detail_lr_floor,
        seed=recipe.train_seed,
        ranks=ranks,
        **kw,
    )
    finished = ranks.is_main and progress.step >= recipe.detail_steps
    if finished:
        detailed, bilinear = held_out_l1(model, latents[-held:])
        _record(run, "detail_held_out_l1", detailed)
        _record(run, "bilinear_held_out_l1", bilinear)
    _keep(model, run / FINAL["detail"], finished)
    return model.requires_grad_(False)


def stage_anatomy(
    recipe: LatentRecipe,
    run: Path,
    data: anatomy_gan.AnatomyData,
    detail: DetailNet,
    architecture: str,
    *,
    ranks: Ranks = ALONE,
    **kw,
) -> ConditionalGenerator:
    """The anatomy GAN on the coarse grids of the normal latents."""
    coarse = anatomy_gan.AnatomyData(coarse_all(detail, data.latents), data.age, data.sex)
    options = {
        "lr": recipe.anatomy_lr[architecture],
        "instance_noise": recipe.anatomy_instance_noise,
        "mode_seeking": recipe.anatomy_mode_seeking,
        "sliced": recipe.anatomy_sliced.get(architecture, 0.0),
        **kw,
    }
    generator, progress = anatomy_gan.train_anatomy_gan(
        coarse,
        anatomy_config(recipe, architecture),
        out_dir=run / architecture,
        steps=recipe.anatomy_steps[architecture],
        batch_size=recipe.anatomy_batch,
        seed=recipe.train_seed,
        ranks=ranks,
        **options,
    )
    finished = ranks.is_main and progress.step >= recipe.anatomy_steps[architecture]
    _keep(generator, run / architecture / FINAL["anatomy"], finished)
    if finished and architecture in recipe.anatomy_calibration:
        stage_calibration(run / architecture, coarse, generator)
    return generator


CALIBRATION = "calibration.pt"  # beside the anatomy GAN, with its record in a .json


def stage_calibration(
    folder: Path, coarse: anatomy_gan.AnatomyData, generator: ConditionalGenerator
) -> calibration.GridCalibration:
    """The anatomy GAN's calibration to the coarse grids it trained on, fitted once into
    ``folder``; its record (grids used, seconds taken) beside it."""
    path = folder / CALIBRATION
    if path.exists():
        return load_calibration(path)
    started, cpu = time.perf_counter(), time.process_time()
    cond = coarse.conditions(np.arange(len(coarse.latents)))
    fitted = calibration.calibrate(generator, coarse.latents, cond)
    record = {
        "training_grids": len(coarse.latents),
        "drawn_grids": calibration.DRAWS_PER_GRID * len(coarse.latents),
    }
    _save_fitted(path, fitted, record, started, cpu)
    return fitted


def _save_fitted(
    path: Path, fitted: torch.nn.Module, record: dict, started: float, cpu: float
) -> None:
    """Save a fitted part at ``path`` (atomically) and its record, with the wall and CPU
    seconds since ``started`` and ``cpu``, in a .json beside it."""
    record = {
        **record,
        "wall_seconds": round(time.perf_counter() - started, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
    }
    path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    temporary = path.with_suffix(".tmp")
    torch.save(fitted.state_dict(), temporary)
    os.replace(temporary, path)


def load_calibration(path: Path) -> calibration.GridCalibration:
    state = torch.load(path, map_location="cpu", weights_only=True)
    cells, conditions = state["transport"].shape[0], state["training_mean"].shape[0] - 1
    fitted = calibration.GridCalibration(cells, conditions)
    fitted.load_state_dict(state)
    return fitted.eval()


def calibration_record(folder: Path) -> dict:
    """What the model card says of a calibration fitted into ``folder``."""
    return json.loads((folder / CALIBRATION).with_suffix(".json").read_text())


ANATOMY_READER = "anatomy-reader.pt"  # beside the shared stages, with its record in a .json


def stage_anatomy_reader(
    recipe: LatentRecipe, folder: Path, workers: int = 2, max_minutes: float | None = None
) -> anatomy_reader.AnatomyReader:
    """The anatomy reader of the recipe's ``anatomy_reader_channels``, trained into
    ``folder`` on simulated normal subjects (:mod:`genworker.latent.anatomy_reader`), its
    record beside it; a reader cut short by ``max_minutes`` continues when called again."""
    path = folder / ANATOMY_READER
    if path.exists():
        return load_anatomy_reader(recipe, path)
    started, cpu = time.perf_counter(), time.process_time()
    subjects = simulate_normals(
        recipe.cohort, anatomy_reader.FIT_SUBJECTS, anatomy_reader.FIT_SEED, workers
    )
    simulated, simulated_cpu = time.perf_counter() - started, time.process_time() - cpu
    reader, progress = anatomy_reader.train_anatomy_reader(
        subjects.clean,
        subjects.anatomy,
        anatomy_reader_config(recipe),
        edge_level=recipe.anatomy_reader_edge,
        state_path=folder / "anatomy-reader-state.pt",
        steps=recipe.anatomy_reader_steps,
        seed=recipe.train_seed,
        max_minutes=max_minutes,
    )
    if progress.step >= recipe.anatomy_reader_steps:
        names = SIMULATORS[recipe.cohort].ANATOMY_MAPS
        record = {
            "subjects": anatomy_reader.FIT_SUBJECTS,
            "seed": anatomy_reader.FIT_SEED,
            "channels": [names[c] for c in recipe.anatomy_reader_channels],
            "steps": progress.step,
        }
        # Its seconds: this call's simulation and every call's training steps.
        _save_fitted(
            path,
            reader,
            record,
            time.perf_counter() - simulated - progress.seconds,
            time.process_time() - simulated_cpu - progress.cpu_seconds,
        )
    return reader


def anatomy_reader_config(recipe: LatentRecipe) -> anatomy_reader.AnatomyReaderConfig:
    return anatomy_reader.AnatomyReaderConfig(
        recipe.autoencoder.image_channels, recipe.anatomy_reader_channels
    )


def load_anatomy_reader(recipe: LatentRecipe, path: Path) -> anatomy_reader.AnatomyReader:
    reader = anatomy_reader.AnatomyReader(anatomy_reader_config(recipe))
    reader.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return reader.eval().requires_grad_(False)


def anatomy_reader_record(folder: Path) -> dict:
    """What the model card says of an anatomy reader trained into ``folder``."""
    return json.loads((folder / ANATOMY_READER).with_suffix(".json").read_text())


def stage_renderer(
    recipe: LatentRecipe,
    run: Path,
    autoencoder: Autoencoder,
    detail: DetailNet,
    cohort: ScanCohort,
    *,
    ranks: Ranks = ALONE,
    **kw,
) -> LesionRenderer:
    train = ~cohort.held_out
    rows = np.flatnonzero(train)
    tracks = np.unique(cohort.track[rows])
    index = {int(t): i for i, t in enumerate(tracks)}
    data = RendererData(
        normal=encode_all(autoencoder, cohort.normal[tracks]),
        target=encode_all(autoencoder, cohort.clean[rows]),
        maps=cohort.lesion_maps[rows],
        track=np.array([index[int(t)] for t in cohort.track[rows]]),
        change=cohort.clean[rows] - cohort.normal[cohort.track[rows]],
        masks=cohort.masks[rows] if recipe.renderer_contrast > 0 else None,
        clean=cohort.clean[rows] if recipe.renderer_contrast > 0 else None,
    )
    if recipe.renderer_on_redraws:
        data = data.on_redraws(redraw_all(detail, data.normal))
    model, progress = train_renderer(
        data,
        recipe.renderer,
        out_dir=run,
        steps=recipe.renderer_steps,
        seed=recipe.train_seed,
        ranks=ranks,
        autoencoder=autoencoder,
        contrast_weight=recipe.renderer_contrast,
        ring_px=round(RING_MM / SIMULATORS[recipe.cohort].PIXEL_MM),
        **kw,
    )
    _keep(model, run / FINAL["renderer"], ranks.is_main and progress.step >= recipe.renderer_steps)
    return model.requires_grad_(False)


LESION_GAIN = "lesion-gain.pt"  # beside the renderer it was fitted to, with a .json record


def stage_lesion_gain(
    recipe: LatentRecipe,
    run: Path,
    autoencoder: Autoencoder,
    detail: DetailNet,
    renderer: LesionRenderer,
    cohort: ScanCohort,
) -> lesion_gain.LesionGain:
    """The renderer's lesion gain (:mod:`genworker.latent.lesion_gain`), fitted once into
    ``run`` on the cohort's held-out lesion tracks (which the renderer never learnt from),
    each at its most severe timepoint: the lesion at its full extent, where its contrast is
    read."""
    path = run / LESION_GAIN
    if path.exists():
        return load_lesion_gain(path)
    started, cpu = time.perf_counter(), time.process_time()
    simulator = SIMULATORS[recipe.cohort]
    most_severe: dict[int, int] = {}
    for row in np.flatnonzero(cohort.held_out & cohort.masks.any(axis=(1, 2))):
        track = int(cohort.track[row])
        if track not in most_severe or cohort.severity[row] > cohort.severity[most_severe[track]]:
            most_severe[track] = int(row)
    rows = np.array(sorted(most_severe.values()), dtype=np.int64)
    tracks = cohort.track[rows]
    fitted, record = lesion_gain.fit_lesion_gain(
        autoencoder,
        detail,
        renderer,
        normal_latents=encode_all(autoencoder, cohort.normal[tracks]),
        maps=cohort.lesion_maps[rows],
        images=cohort.clean[rows],
        masks=cohort.masks[rows],
        bodies=[simulator.body_mask(cohort.anatomy[t].astype(np.float32)) for t in tracks],
        ring_px=round(RING_MM / simulator.PIXEL_MM),
        channels=cohort.channels,
    )
    _save_fitted(path, fitted, record, started, cpu)
    return fitted


def load_lesion_gain(path: Path) -> lesion_gain.LesionGain:
    state = torch.load(path, map_location="cpu", weights_only=True)
    fitted = lesion_gain.LesionGain(len(state["gain"]))
    fitted.load_state_dict(state)
    return fitted.eval()


def lesion_gain_record(folder: Path) -> dict:
    """What the model card says of a lesion gain fitted into ``folder``."""
    return json.loads((folder / LESION_GAIN).with_suffix(".json").read_text())


def stage_segmenter(
    recipe: LatentRecipe, run: Path, cohort: ScanCohort, *, ranks: Ranks = ALONE, **kw
) -> Segmenter:
    simulator = SIMULATORS[recipe.cohort]
    rows = np.flatnonzero(~cohort.held_out)

    def acquire(picked: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        chosen = rows[picked]
        clean = cohort.clean[chosen].astype(np.float32)
        noise = cohort.noise[cohort.track[chosen]]
        return np.stack([simulator.acquire(c, n, rng) for c, n in zip(clean, noise, strict=True)])

    data = SegmenterData(cohort.clean[rows], cohort.masks[rows], acquire)
    model, progress = train_segmenter(
        data,
        recipe.segmenter,
        out_dir=run,
        steps=recipe.segmenter_steps,
        seed=recipe.train_seed,
        ranks=ranks,
        **kw,
    )
    _keep(
        model, run / FINAL["segmenter"], ranks.is_main and progress.step >= recipe.segmenter_steps
    )
    return model.requires_grad_(False)


def train_recipe(
    recipe: LatentRecipe,
    run: Path,
    *,
    architectures: tuple[str, ...],
    workers: int = 2,
    max_minutes: float | None = None,
    ranks: Ranks = ALONE,
) -> dict:
    """Run every stage in order; returns the trained parts (some may be unfinished when
    ``max_minutes`` ran out: call again to continue)."""
    torch.set_num_threads(workers)
    run.mkdir(parents=True, exist_ok=True)
    deadline = None if max_minutes is None else time.monotonic() + 60 * max_minutes

    def left() -> float | None:
        return None if deadline is None else max(0.0, (deadline - time.monotonic()) / 60)

    if ranks.is_main:  # the other ranks read what rank 0 simulates
        cohort_for(recipe, run, workers), normals_for(recipe, run, workers)
    ranks.barrier()
    cohort = cohort_for(recipe, run, workers)
    normals = normals_for(recipe, run, workers)
    autoencoder = stage_autoencoder(
        recipe, run, autoencoder_data(cohort, normals), ranks=ranks, max_minutes=left()
    )
    parts: dict = {"autoencoder": autoencoder}
    parts["segmenter"] = stage_segmenter(recipe, run, cohort, ranks=ranks, max_minutes=left())
    if ranks.is_main:
        normal_latents(run, autoencoder, cohort, normals)
    ranks.barrier()
    latents = normal_latents(run, autoencoder, cohort, normals)
    parts["detail"] = stage_detail(recipe, run, latents.latents, ranks=ranks, max_minutes=left())
    parts["renderer"] = stage_renderer(
        recipe, run, autoencoder, parts["detail"], cohort, ranks=ranks, max_minutes=left()
    )
    if recipe.lesion_gain and ranks.is_main and (run / FINAL["renderer"]).exists():
        parts["lesion_gain"] = stage_lesion_gain(
            recipe, run, autoencoder, parts["detail"], parts["renderer"], cohort
        )
    if recipe.anatomy_reader_channels and ranks.is_main:
        parts["anatomy_reader"] = stage_anatomy_reader(recipe, run, workers, left())
    for architecture in architectures:
        parts[architecture] = stage_anatomy(
            recipe, run, latents, parts["detail"], architecture, ranks=ranks, max_minutes=left()
        )
    return parts


def _retraining_cohort(recipe: LatentRecipe, run: Path, workers: int) -> ScanCohort:
    """The recipe's cohort in a retrain's ``run`` folder (made if missing), on ``workers``
    threads."""
    torch.set_num_threads(workers)
    run.mkdir(parents=True, exist_ok=True)
    return cohort_for(recipe, run, workers)


def retrain_anatomy(
    recipe: LatentRecipe,
    run: Path,
    autoencoder: Autoencoder,
    detail: DetailNet,
    architecture: str,
    *,
    workers: int = 2,
    max_minutes: float | None = None,
) -> tuple[ConditionalGenerator, bool]:
    """The anatomy GAN of ``architecture`` trained anew in ``run`` on a finished model's own
    autoencoder and detail network (the recipe's cohort and normals encoded by them), so that
    a shipped model's anatomy can follow a changed recipe without training the stages it
    shares again; returns the generator and whether it is finished."""
    latents = _encoded_normals(recipe, run, autoencoder, workers)
    generator = stage_anatomy(recipe, run, latents, detail, architecture, max_minutes=max_minutes)
    return generator, (run / architecture / FINAL["anatomy"]).exists()


def retrain_renderer(
    recipe: LatentRecipe,
    run: Path,
    autoencoder: Autoencoder,
    detail: DetailNet,
    *,
    workers: int = 2,
    max_minutes: float | None = None,
) -> tuple[LesionRenderer, bool]:
    """The lesion renderer trained anew in ``run`` on a finished model's own autoencoder and
    detail network, as ``retrain_anatomy`` does for the anatomy GAN, and whether it is
    finished. Finished, its lesion gain is fitted too, where the recipe has one."""
    cohort = _retraining_cohort(recipe, run, workers)
    renderer = stage_renderer(recipe, run, autoencoder, detail, cohort, max_minutes=max_minutes)
    finished = (run / FINAL["renderer"]).exists()
    if finished and recipe.lesion_gain:
        stage_lesion_gain(recipe, run, autoencoder, detail, renderer, cohort)
    return renderer, finished


def fit_lesion_gain(
    recipe: LatentRecipe,
    run: Path,
    autoencoder: Autoencoder,
    detail: DetailNet,
    renderer: LesionRenderer,
    *,
    workers: int = 2,
) -> lesion_gain.LesionGain:
    """A finished model's lesion gain fitted into ``run`` on the recipe's cohort (see
    ``stage_lesion_gain``)."""
    cohort = _retraining_cohort(recipe, run, workers)
    return stage_lesion_gain(recipe, run, autoencoder, detail, renderer, cohort)


def calibrate_anatomy(
    recipe: LatentRecipe,
    run: Path,
    autoencoder: Autoencoder,
    detail: DetailNet,
    generator: ConditionalGenerator,
    folder: Path,
    *,
    workers: int = 2,
) -> calibration.GridCalibration:
    """A finished model's anatomy GAN calibrated into ``folder`` (see ``stage_calibration``)
    to the coarse grids of the recipe's normal subjects encoded by the model's own
    autoencoder and detail network, in ``run`` as ``retrain_anatomy`` encodes them."""
    latents = _encoded_normals(recipe, run, autoencoder, workers)
    coarse = anatomy_gan.AnatomyData(coarse_all(detail, latents.latents), latents.age, latents.sex)
    folder.mkdir(parents=True, exist_ok=True)
    return stage_calibration(folder, coarse, generator)


def _encoded_normals(
    recipe: LatentRecipe, run: Path, autoencoder: Autoencoder, workers: int
) -> anatomy_gan.AnatomyData:
    """The recipe's normal subjects in ``run``, encoded by a finished model's autoencoder."""
    cohort = _retraining_cohort(recipe, run, workers)
    return normal_latents(run, autoencoder, cohort, normals_for(recipe, run, workers))


def _stage_paths(run: Path, architecture: str) -> dict[str, tuple[Path, Path]]:
    return {
        stage: (
            (run / architecture if stage == "anatomy" else run) / STATES[stage],
            (run / architecture if stage == "anatomy" else run) / FINAL[stage],
        )
        for stage in STATES
    }


def trained_parts(recipe: LatentRecipe, run: Path, architecture: str) -> dict:
    """The finished networks of a run; an error naming the stages still to train."""
    paths = _stage_paths(run, architecture)
    missing = [stage for stage, (_, final) in paths.items() if not final.exists()]
    calibrated = run / architecture / CALIBRATION
    if architecture in recipe.anatomy_calibration and not calibrated.exists():
        missing.append("the anatomy GAN's calibration")
    if recipe.anatomy_reader_channels and not (run / ANATOMY_READER).exists():
        missing.append("the anatomy reader")
    if recipe.lesion_gain and not (run / LESION_GAIN).exists():
        missing.append("the lesion gain")
    if missing:
        raise FileNotFoundError(
            f"{run} has not finished {', '.join(missing)}: run `python -m genworker latent "
            f"train {recipe.name} --architectures {architecture}` (it resumes)"
        )
    modules = {
        "autoencoder": Autoencoder(recipe.autoencoder),
        "renderer": LesionRenderer(recipe.renderer),
        "segmenter": Segmenter(recipe.segmenter),
        "detail": DetailNet(recipe.detail),
        "anatomy": build_generator(anatomy_config(recipe, architecture)),
    }
    for stage, module in modules.items():
        module.load_state_dict(torch.load(paths[stage][1], map_location="cpu", weights_only=True))
        module.eval().requires_grad_(False)
    if architecture in recipe.anatomy_calibration:
        modules["calibration"] = load_calibration(calibrated)
    if recipe.anatomy_reader_channels:
        modules["anatomy_reader"] = load_anatomy_reader(recipe, run / ANATOMY_READER)
    if recipe.lesion_gain:
        modules["lesion_gain"] = load_lesion_gain(run / LESION_GAIN)
    return modules


def stage_records(
    recipe: LatentRecipe, run: Path, architecture: str, stages: tuple[str, ...] = tuple(STATES)
) -> dict[str, dict]:
    """Steps, wall and CPU seconds of each of the model's ``stages``, from its state files."""
    records = {}
    for stage in stages:
        state = _stage_paths(run, architecture)[stage][0]
        saved = torch.load(state, map_location="cpu", weights_only=True)
        records[stage] = {
            "steps": int(saved["step"]),
            "wall_seconds": round(float(saved["seconds"]), 3),
            "cpu_seconds": round(float(saved["cpu_seconds"]), 3),  # a tiny stage takes ms
        }
    return records
