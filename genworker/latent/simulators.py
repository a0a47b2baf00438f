"""The simulators a latent model is trained on, by cohort name: each builds a cohort, draws
and adds scanner noise, measures a lesion mask (facts) and names its contrasts and anatomy
maps (see :mod:`genworker.cohorts.brain_mri`, :mod:`genworker.cohorts.chest_radiograph`)."""

from __future__ import annotations

from genworker.cohorts import brain_mri, chest_radiograph

SIMULATORS = {module.NAME: module for module in (brain_mri, chest_radiograph)}
