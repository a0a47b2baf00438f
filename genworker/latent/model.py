"""A shipped latent model: its five networks (and the anatomy GAN's calibration, the
renderer's lesion gain and the anatomy reader, where it has them) in one file, and how a
case's series is made.

The file is a plain dict (format tag, each part's config and weights, the model card) that
loads with ``torch.load(weights_only=True)``. :meth:`LatentModel.series` turns a patient
(z, age, sex) and a request (finding, severities, side, location) into a progression
series: the anatomy GAN draws the patient's coarse latent grid (through its calibration,
where the model has one: :mod:`genworker.latent.calibration`), the detail network the full
one, and the series has the same anatomy at every timepoint, the planned lesion drawn at
each (the change it makes in the image multiplied by the lesion gain, where the model has
one: :mod:`genworker.latent.lesion_gain`), the scanner's noise added, and each image's
lesion read back and checked against its planned mask.
The lesion is planned on the anatomy maps the decoder gives back, those the model's anatomy
reader reads from the decoded image in their place where it has one
(:mod:`genworker.latent.anatomy_reader`).

A lesion is read by the lesion segmenter, or, for a finding in ``Domain.read_by_change``,
as the region where it changes the noise-free image (the image minus the same patient's
image without it). The change is exact where the segmenter is weak: the chest segmenter
misses small nodules whole (held-out Dice 0.3-0.7 by size), while the change a nodule
makes matches its mask (Dice 0.91 on the simulation itself). An effusion's change spreads
past its mask through the film's processing (Dice 0.78), where the segmenter reads 0.92.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genworker.checkpoint import read_checked, write_with_card
from genworker.cohorts import brain_mri, chest_radiograph
from genworker.conditions import ConditionSchema
from genworker.latent import anatomy_gan, planning
from genworker.latent.anatomy_reader import AnatomyReader, AnatomyReaderConfig
from genworker.latent.autoencoder import Autoencoder, AutoencoderConfig
from genworker.latent.calibration import GridCalibration
from genworker.latent.detail import DetailConfig, DetailNet
from genworker.latent.lesion_gain import LesionGain
from genworker.latent.renderer import LesionRenderer, RendererConfig
from genworker.latent.segmenter import Segmenter, SegmenterConfig, dice
from genworker.latent.simulators import SIMULATORS
from genworker.networks import ConditionalGenerator, GeneratorConfig, build_generator, z_from_seed
from genworker.sampling import Series, SeriesSpec

FORMAT = "gantry-latent-generator/2"
MIN_DICE = 0.8  # a case whose image and planned mask agree less than this is not kept
CHANGE_FRACTION = 0.2  # a pixel shows the lesion where its change exceeds this share of the peak
VISIBLE_CNR = 2.0  # a lesion whose peak change is under this many noise sd shows nowhere
ATTEMPTS = 6  # plans tried per case before it fails: half on its patient, half on another
REDRAW_SEED_OFFSET = 7_919  # the other patient's z comes from seed + this


@dataclass(frozen=True)
class Domain:
    """What a latent model knows about its images besides its networks."""

    cohort: str
    modality: str
    channels: tuple[str, ...]
    findings: tuple[str, ...]
    pixel_mm: float
    read_by_change: tuple[str, ...] = ()  # findings read from the change they make


DOMAINS = {
    brain_mri.NAME: Domain(
        brain_mri.NAME, "MR", brain_mri.CONTRASTS, brain_mri.FINDINGS, brain_mri.PIXEL_MM
    ),
    chest_radiograph.NAME: Domain(
        chest_radiograph.NAME,
        "DX",
        chest_radiograph.CONTRASTS,
        chest_radiograph.FINDINGS,
        chest_radiograph.PIXEL_MM,
        read_by_change=("nodule",),
    ),
}
PLANNERS = {brain_mri.NAME: planning.plan_brain, chest_radiograph.NAME: planning.plan_chest}


@dataclass
class LatentSeries:
    """One case's images and ground truth, timepoint by timepoint."""

    images: np.ndarray  # float32 [T, C, R, R] in [0, 1], acquired (with noise)
    clean: np.ndarray  # float32 [T, C, R, R] the same before the scanner's noise
    masks: np.ndarray  # bool [T, R, R] the planned lesion (ground truth)
    severity: np.ndarray  # float32 [T] reached
    side: str
    location: str
    w: np.ndarray  # float32 [w_dim] the patient's mapped latent
    z: np.ndarray  # float32 [z_dim] the patient's identity (another than asked, if redrawn)
    seen: np.ndarray  # bool [T, R, R] the lesion as read back from the images
    segmented_dice: np.ndarray  # float32 [T] planned mask vs ``seen``
    attempts: int  # plans tried (1 = the first was kept)
    normal: np.ndarray  # float32 [C, R, R] the same patient without the finding, acquired
    anatomy: np.ndarray  # float32 [A, R, R] the patient's anatomy maps, as decoded
    lesion_maps: np.ndarray  # float32 [T, L, m, m] the planned lesion's maps, drawn from
    facts: list[dict] = field(default_factory=list)  # per timepoint, see lesion facts


class CaseRejected(RuntimeError):
    """No plan of this case gave images whose lesion was read back where planned."""


def changed_region(clean: np.ndarray, normal: np.ndarray, noise_sd: np.ndarray) -> np.ndarray:
    """bool [T, R, R]: where noise-free images [T, C, R, R] differ from the same patient's
    noise-free image without the lesion [C, R, R] by more than ``CHANGE_FRACTION`` of the
    largest difference; nothing where that is under ``VISIBLE_CNR`` times the noise's sd."""
    change = np.abs(np.asarray(clean, np.float32) - normal[None]).max(axis=1)
    peak = change.max(axis=(1, 2), keepdims=True)
    visible = peak >= VISIBLE_CNR * float(np.min(noise_sd))
    return (change > CHANGE_FRACTION * peak) & visible


@dataclass
class LatentModel:
    domain: Domain
    autoencoder: Autoencoder
    anatomy: ConditionalGenerator
    detail: DetailNet
    renderer: LesionRenderer
    segmenter: Segmenter
    card: dict
    calibration: GridCalibration | None = None  # of the anatomy GAN's grids, where fitted
    anatomy_reader: AnatomyReader | None = None  # of the decoded image's anatomy, where trained
    lesion_gain: LesionGain | None = None  # on the renderer's change in the image, where fitted
    sha256: str = ""
    rejections: int = 0  # plans rejected by the image check since loading
    max_batch: int = 8  # cases a worker groups into one call of progression_batch
    device: str = "cpu"

    @property
    def z_dim(self) -> int:
        return self.anatomy.z_dim

    def compile(self) -> None:
        """Run the decoder, the heaviest part on a CPU, through torch.compile."""
        self.autoencoder.decoder = torch.compile(self.autoencoder.decoder)

    def progression_batch(self, specs: Sequence[SeriesSpec]) -> list[Series]:
        """The series of each spec (see genworker.sampling.progression_batch)."""
        return [self.progression(spec) for spec in specs]

    def progression(self, spec: SeriesSpec) -> Series:
        made = self.series(
            spec.z,
            age=spec.age,
            sex=spec.sex,
            finding=spec.finding,
            severities=list(spec.severities),
            seed=spec.seed,
            side=spec.side,
            location=spec.location,
            truncation=spec.truncation,
        )
        timepoints = len(made.severity)
        return Series(
            images=made.images[:, 0],
            masks=made.masks,
            w=np.repeat(made.w[None], timepoints, axis=0),
            severities=made.severity,
            channels=self.domain.channels,
            more_channels=made.images[:, 1:],
            lesions=[
                {**facts, "segmented_dice": float(score)} if facts else {}
                for facts, score in zip(made.facts, made.segmented_dice, strict=True)
            ],
            z=made.z,
            attempts=made.attempts,
        )

    def conditions(self, age: float, sex: str | int) -> torch.Tensor:
        schema = ConditionSchema(anatomy_gan.ANATOMY_FINDINGS)
        return torch.from_numpy(schema.encode("normal", 0.0, age, sex)).to(self.device)

    @torch.no_grad()
    def normal_latent(
        self, z: np.ndarray, age: float, sex: str | int, truncation: float = 1.0
    ) -> tuple[torch.Tensor, np.ndarray]:
        """The patient's normal latent [1, L, 32, 32] and its w [w_dim]."""
        z_row = torch.from_numpy(np.asarray(z, np.float32)[None]).to(self.device)
        cond = self.conditions(age, sex)
        ws = self.anatomy.mapping(z_row, cond, truncation)
        # Unclamped, as in training: standardised latents reach beyond [-1, 1].
        coarse = self.anatomy.synthesis_network(ws, "const")
        if self.calibration is not None:
            coarse = self.calibration(coarse, cond)
        return self.detail(coarse), ws[0, 0].cpu().numpy()

    @torch.no_grad()
    def series(
        self,
        z: np.ndarray,  # float32 [z_dim]
        *,
        age: float,
        sex: str | int,
        finding: str,
        severities: list[float],
        seed: int,
        side: str | None = None,
        location: str | None = None,
        truncation: float = 1.0,
    ) -> LatentSeries:
        """The case's series; raises CaseRejected when no plan passes the image check.

        The first half of the attempts plan again on the same patient; the second half on
        another patient drawn from the seed (a z the series then reports)."""
        unplanned = None
        rejected = 0
        placements = planning.PLACEMENTS[self.domain.cohort]
        if not side and finding in placements:
            # Drawn once for the case: were each plan to draw its own, the image check's
            # rejections would tilt the kept cases towards the side that passes it more often.
            side = str(np.random.default_rng([seed, ATTEMPTS]).choice(placements[finding][0]))
        for attempt in range(ATTEMPTS):
            if attempt in (0, ATTEMPTS // 2):
                if attempt:
                    z = z_from_seed(seed + REDRAW_SEED_OFFSET, 1, self.z_dim)[0]
                latent, w = self.normal_latent(z, age, sex, truncation)
                anatomy = self.decoded_anatomy(latent)
            rng = np.random.default_rng([seed, attempt])
            try:
                plan = PLANNERS[self.domain.cohort](
                    anatomy, finding, severities, rng, side=side, location=location
                )
            except planning.PlanningError as error:
                unplanned = error
                continue
            made = self._render(latent, plan, rng, finding)
            if made is not None:
                images, clean, normal, seen, scores = made
                return LatentSeries(
                    images=images,
                    clean=clean,
                    masks=plan.masks,
                    severity=plan.severity,
                    side=plan.side,
                    location=plan.location,
                    w=w,
                    z=np.asarray(z, np.float32),
                    seen=seen,
                    segmented_dice=scores,
                    attempts=attempt + 1,
                    normal=normal,
                    anatomy=anatomy,
                    lesion_maps=plan.maps,
                    facts=[self.facts(mask, anatomy) for mask in plan.masks],
                )
            rejected += 1
            self.rejections += 1
        if unplanned is not None and rejected == 0:
            raise unplanned
        raise CaseRejected(
            f"no plan of this {finding} case passed the image check in {ATTEMPTS} attempts"
        )

    def decoded_anatomy(self, latent: torch.Tensor) -> np.ndarray:
        """float32 [A, R, R]: the anatomy maps of a latent [1, L, R', R'], as lesions are
        planned on them."""
        image, anatomy = self.autoencoder.decode(latent)
        maps = anatomy[0].cpu().numpy()
        return maps if self.anatomy_reader is None else self.anatomy_reader.read(image, maps)

    def read(
        self,
        finding: str,
        images: np.ndarray,  # float32 [T, C, R, R] acquired
        clean: np.ndarray,  # float32 [T, C, R, R] the same before the noise
        normal_clean: np.ndarray,  # float32 [C, R, R] the patient without the lesion
        noise_sd: np.ndarray,  # float32 [C]
    ) -> np.ndarray:
        """bool [T, R, R]: the lesion as the images show it (see the module's docstring)."""
        if finding in self.domain.read_by_change:
            return changed_region(clean, normal_clean, noise_sd)
        tensor = torch.from_numpy(np.asarray(images, np.float32)).to(self.device)
        return self.segmenter.segment(tensor).cpu().numpy()

    def _render(
        self, latent: torch.Tensor, plan: planning.Plan, rng: np.random.Generator, finding: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(acquired images, noise-free images, the acquired normal, the lesion read back,
        its Dice per timepoint), or None when the lesion is not read back where planned."""
        timepoints = len(plan.severity)
        maps = torch.from_numpy(plan.maps).to(self.device)
        has_lesion = torch.from_numpy(plan.masks.any(axis=(1, 2))).to(self.device)
        drawn = self.renderer(latent.expand(timepoints, -1, -1, -1), maps)
        latents = torch.where(has_lesion[:, None, None, None], drawn, latent)
        decoded, _ = self.autoencoder.decode(torch.cat([latents, latent]))
        if self.lesion_gain is not None:
            normal = decoded[timepoints:]
            decoded = torch.cat([self.lesion_gain(decoded[:timepoints], normal), normal])
        clean = decoded.cpu().numpy()
        simulator = SIMULATORS[self.domain.cohort]
        noise = simulator.draw_noise(rng)
        acquired = simulator.acquire(clean, noise, rng)
        images, normal = acquired[:timepoints], acquired[timepoints]
        seen = self.read(finding, images, clean[:timepoints], clean[timepoints], noise)
        scores = np.array(
            [dice(s, m) for s, m in zip(seen, plan.masks, strict=True)], dtype=np.float32
        )
        if np.any(scores[plan.masks.any(axis=(1, 2))] < MIN_DICE):
            return None
        return images, clean[:timepoints], normal, seen, scores

    def facts(self, mask: np.ndarray, anatomy: np.ndarray) -> dict:
        return SIMULATORS[self.domain.cohort].facts(mask, anatomy)


def _part(module: torch.nn.Module, config: dict, half: bool) -> dict:
    return {
        "config": config,
        "state_dict": {
            name: (value.half() if half and value.is_floating_point() else value).detach().cpu()
            for name, value in module.state_dict().items()
        },
    }


def save_latent_model(
    path: Path,
    *,
    domain: Domain,
    autoencoder: Autoencoder,
    anatomy: ConditionalGenerator,
    detail: DetailNet,
    renderer: LesionRenderer,
    segmenter: Segmenter,
    card: dict,
    calibration: GridCalibration | None = None,
    anatomy_reader: AnatomyReader | None = None,
    lesion_gain: LesionGain | None = None,
    half: bool = True,
) -> str:
    """Write ``path`` and its sidecar card; returns the file's sha256. The calibration and
    the lesion gain are kept in full precision: each multiplies what it is applied to."""
    card_json = json.dumps(card, indent=2, sort_keys=True)
    payload = {
        "format": FORMAT,
        "domain": domain.cohort,
        "parts": {
            "autoencoder": _part(autoencoder, autoencoder.config.to_dict(), half),
            "anatomy": _part(anatomy, anatomy.config.to_dict(), half),
            "detail": _part(detail, detail.config.to_dict(), half),
            "renderer": _part(renderer, renderer.config.to_dict(), half),
            "segmenter": _part(segmenter, segmenter.config.to_dict(), half),
        },
        "model_card": json.loads(card_json),
    }
    if calibration is not None:
        payload["parts"]["calibration"] = _part(calibration, calibration.config, half=False)
    if lesion_gain is not None:
        payload["parts"]["lesion_gain"] = _part(lesion_gain, lesion_gain.config, half=False)
    if anatomy_reader is not None:
        payload["parts"]["anatomy_reader"] = _part(
            anatomy_reader, anatomy_reader.config.to_dict(), half
        )
    return write_with_card(payload, path, json.loads(card_json))


def _load(module: torch.nn.Module, part: dict, device: str) -> torch.nn.Module:
    module.load_state_dict(
        {
            name: value.float() if value.is_floating_point() else value
            for name, value in part["state_dict"].items()
        }
    )
    return module.to(device).eval().requires_grad_(False)


def load_latent_model(path: Path, device: str = "cpu") -> LatentModel:
    """Rebuild a shipped latent model on ``device``; refuses a file its sidecar does not
    match."""
    payload, digest = read_checked(path, FORMAT)
    parts = payload["parts"]
    calibration = None
    if "calibration" in parts:  # models shipped without one draw the grids as the GAN does
        part = parts["calibration"]
        calibration = _load(GridCalibration(**part["config"]), part, device)
    reader = None
    if "anatomy_reader" in parts:  # models shipped without one plan on the decoded maps
        part = parts["anatomy_reader"]
        reader = _load(AnatomyReader(AnatomyReaderConfig.from_dict(part["config"])), part, device)
    gain = None
    if "lesion_gain" in parts:  # models shipped without one draw the renderer's change as is
        part = parts["lesion_gain"]
        gain = _load(LesionGain(**part["config"]), part, device)
    return LatentModel(
        domain=DOMAINS[payload["domain"]],
        autoencoder=_load(
            Autoencoder(AutoencoderConfig.from_dict(parts["autoencoder"]["config"])),
            parts["autoencoder"],
            device,
        ),
        anatomy=_load(
            build_generator(GeneratorConfig.from_dict(parts["anatomy"]["config"])),
            parts["anatomy"],
            device,
        ),
        detail=_load(
            DetailNet(DetailConfig.from_dict(parts["detail"]["config"])), parts["detail"], device
        ),
        renderer=_load(
            LesionRenderer(RendererConfig(**parts["renderer"]["config"])), parts["renderer"], device
        ),
        segmenter=_load(
            Segmenter(SegmenterConfig.from_dict(parts["segmenter"]["config"])),
            parts["segmenter"],
            device,
        ),
        card=payload["model_card"],
        calibration=calibration,
        anatomy_reader=reader,
        lesion_gain=gain,
        sha256=digest,
        device=str(device),
    )
