"""The lengths of a latent recipe trained for two steps a stage: every part exists, none is
good (``dataclasses.replace(latent_recipe(name), **TINY_LENGTHS)``)."""

TINY_LENGTHS = {
    "subjects": 3,
    "extra_normals": 2,
    "timepoints": 2,
    "autoencoder_steps": 2,
    "anatomy_steps": {"stylegan2": 2, "cgan": 2},
    "detail_steps": 2,
    "renderer_steps": 2,
    "segmenter_steps": 2,
    "anatomy_reader_steps": 2,
    "anatomy_batch": 4,
}
