"""Latent generators: the engine behind Gantry's shipped models.

A case is made in four stages, each a small network or model of its own:

1. an autoencoder (:mod:`.autoencoder`) maps a 256² study (all its contrasts) to a 32²
   latent grid and back, and its decoder also draws the anatomy a lesion is planned on;
2. a conditional GAN (:mod:`.anatomy_gan`: a StyleGAN2 or a cGAN from
   :mod:`genworker.networks`) samples a patient's normal anatomy on that grid from z, age
   and sex;
3. the lesion model (:mod:`.planning`) plans the finding on the decoded anatomy at each
   timepoint, in the requested side and location, with the simulator's own growth models;
   the planned mask is the case's ground truth;
4. a lesion renderer (:mod:`.renderer`) draws that lesion into the patient's latent, and the
   decoder and the scanner model (acquisition noise) make the images. A segmenter
   (:mod:`.segmenter`) trained on the simulation's exact masks checks every image against
   its planned mask.
"""
