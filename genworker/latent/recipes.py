"""The recipes of Gantry's shipped latent models: cohort, networks and training lengths.

One recipe per domain trains the stages a domain shares (autoencoder, detail network,
lesion renderer, segmenter) once, and an anatomy GAN per architecture on top; each
architecture ships as its own model file. The lengths fit two CPU cores: ``cpu_minutes``
is the budget of a whole model (its shared stages included), checked against what
training measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genworker.cohorts import chest_radiograph
from genworker.latent.autoencoder import AutoencoderConfig
from genworker.latent.detail import DetailConfig
from genworker.latent.renderer import RendererConfig
from genworker.latent.segmenter import SegmenterConfig

ARCHITECTURES = ("stylegan2", "cgan")


@dataclass(frozen=True)
class LatentRecipe:
    name: str  # a model is shipped as <name>-<architecture>.pt
    cohort: str
    subjects: int
    extra_normals: int  # normal subjects simulated for the anatomy GAN on top of the cohort
    autoencoder: AutoencoderConfig
    detail: DetailConfig
    renderer: RendererConfig
    segmenter: SegmenterConfig
    anatomy: dict  # GeneratorConfig fields besides architecture, resolution, channels, findings
    autoencoder_steps: int
    anatomy_steps: dict  # per architecture
    detail_steps: int
    renderer_steps: int
    segmenter_steps: int
    anatomy_batch: int = 32
    # Per architecture: the cGAN collapses to one anatomy at the StyleGAN2's rate.
    anatomy_lr: dict = field(default_factory=lambda: {"stylegan2": 0.002, "cgan": 0.0005})
    anatomy_instance_noise: float = 0.2  # see anatomy_gan.train_anatomy_gan
    anatomy_mode_seeking: float = 1.0  # see anatomy_gan.train_anatomy_gan
    # Per architecture, the weight of the sliced distance (anatomy_gan.sliced_distance).
    anatomy_sliced: dict = field(default_factory=dict)
    # The architectures whose anatomy GAN's calibration is fitted after it trains
    # (genworker.latent.calibration).
    anatomy_calibration: tuple[str, ...] = ()
    # The anatomy maps read from the decoded image before a lesion is planned on them
    # (genworker.latent.anatomy_reader): their channels, the maps' value at a field's edge
    # (which the reader's loss weighs again) and its training steps. Trained on simulated
    # normal subjects alone, shared by the architectures.
    anatomy_reader_channels: tuple[int, ...] = ()
    anatomy_reader_edge: float = 0.0
    anatomy_reader_steps: int = 1000
    renderer_contrast: float = 0.0  # weight of the renderer's contrast term (renderer.py)
    # Multiply the change the renderer's lesions make in the image by one factor per
    # contrast, fitted on the held-out lesions after the renderer (genworker.latent.lesion_gain).
    lesion_gain: bool = False
    # Learn lesions on the detail network's redraws of the subjects, not on their encoded
    # latents (RendererData.on_redraws): the renderer then trains after the detail network.
    renderer_on_redraws: bool = False
    # The detail network's learning rate ends at this share of where it starts (cosine);
    # 1 keeps it constant (detail.train_detail).
    detail_lr_floor: float = 1.0
    cohort_seed: int = 2026
    normals_seed: int = 7001
    timepoints: int = 5
    train_seed: int = 0
    cpu_minutes: float = 150.0  # wall minutes on two cores
    notes: dict = field(default_factory=dict)


_ANATOMY = {
    "z_dim": 128,
    "w_dim": 128,
    "channel_base": 2048,
    "channel_max": 64,
    "mapping_layers": 4,
}

RECIPES: dict[str, LatentRecipe] = {
    "brain-mri": LatentRecipe(
        name="brain-mri",
        cohort="brain-mri",
        subjects=600,
        extra_normals=2000,
        autoencoder=AutoencoderConfig(
            image_channels=3,
            anatomy_channels=3,
            latent_channels=8,
            widths=(16, 32, 64, 128),
            latent_noise=0.1,
        ),
        detail=DetailConfig(latent_channels=8),
        renderer=RendererConfig(latent_channels=8, map_channels=7),
        segmenter=SegmenterConfig(image_channels=3),
        anatomy=_ANATOMY,
        autoencoder_steps=2000,
        # The cGAN learns at a quarter of the StyleGAN2's rate: at 8000 steps its Fréchet
        # ratio was 2.16, at 24000 1.64 (docs/engine.md).
        anatomy_steps={"stylegan2": 8000, "cgan": 24000},
        # Fréchet ratio 1.89 -> 1.79 with the sliced distance (docs/engine.md).
        anatomy_sliced={"stylegan2": 30.0},
        # Calibrated, the Fréchet ratio went from 1.80 to 1.47 (StyleGAN2) and from 1.67 to
        # 1.48 (cGAN), the two-sample AUC from 0.56 to 0.54 and 0.53 (docs/engine.md).
        anatomy_calibration=("stylegan2", "cgan"),
        detail_steps=1500,
        renderer_steps=1500,
        # The pixel term alone drew T1 lesions at half the simulation's contrast: the
        # contrast term weighs what the reader sees (renderer.contrast_error); at 10 rather
        # than 3, T1c's contrast is nearer the simulation's and fewer plans fail the check.
        renderer_contrast=10.0,
        # Learnt on encoded subjects, FLAIR lesions kept 0.8 of the simulation's contrast on
        # sampled brains, whose thinner sulci hold less dark CSF around them (docs/engine.md).
        renderer_on_redraws=True,
        # The renderer's gliomas keep 0.84 of the simulation's FLAIR contrast; with the gain
        # the FLAIR contrast-to-noise ratio went from 0.74 to 0.90 (StyleGAN2) and from 0.75
        # to 0.89 (cGAN), T1 and T1c to 1.07 and 0.92 (docs/engine.md).
        lesion_gain=True,
        # At a constant learning rate the detail network's last weights drew brains that a
        # classifier told from the autoencoder's own at AUC 0.99; decayed to a tenth, 0.53.
        detail_lr_floor=0.1,
        segmenter_steps=400,
    ),
    "chest-radiograph": LatentRecipe(
        name="chest-radiograph",
        cohort="chest-radiograph",
        subjects=600,
        extra_normals=2000,
        autoencoder=AutoencoderConfig(
            image_channels=1,
            anatomy_channels=3,
            latent_channels=8,
            widths=(16, 32, 64, 128),
            latent_noise=0.1,
        ),
        detail=DetailConfig(latent_channels=8),
        renderer=RendererConfig(latent_channels=8, map_channels=1),
        segmenter=SegmenterConfig(image_channels=1),
        anatomy=_ANATOMY,
        autoencoder_steps=2000,
        # At 8000 steps the cGAN failed a third of its effusion cases and the StyleGAN2's
        # Fréchet ratio was 2.5; 24000 made more cases with both (docs/engine.md). With the
        # sliced distance the StyleGAN2 drew normal films nearer the simulation's at 12000
        # steps than it had at 24000 without (docs/engine.md).
        anatomy_steps={"stylegan2": 12000, "cgan": 24000},
        anatomy_sliced={"stylegan2": 30.0},
        # The StyleGAN2 calibrated: Fréchet ratio 3.12 -> 2.75, two-sample AUC 0.64 -> 0.59.
        # The cGAN, once its lesions were planned on the lungs read from the film: Fréchet
        # ratio 2.16 -> 1.67 (docs/engine.md).
        anatomy_calibration=("stylegan2", "cgan"),
        # The lungs (right, left) read from the decoded film: the decoder's own lung maps
        # end elsewhere at the bases than the film does, and effusions planned on them
        # were drawn where the simulation would not put them (docs/engine.md).
        anatomy_reader_channels=(0, 1),
        anatomy_reader_edge=chest_radiograph.LUNG_FIELD_MM / 100,  # maps in decimetres
        detail_steps=1500,
        # As for the brain: at a constant learning rate the two-sample classifier told the
        # generated films from simulated ones at AUC 0.85-0.87; decayed to a tenth, 0.59.
        detail_lr_floor=0.1,
        renderer_steps=1500,
        # At 2000 steps the segmenter's held-out Dice: effusions 0.92, nodules 0.22-0.67 by
        # size, so nodules are read by the change they make.
        segmenter_steps=2000,
    ),
}


def latent_recipe(name: str) -> LatentRecipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name]
