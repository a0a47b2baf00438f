"""Forced-choice trials of a study, drawn from its seed and its images.

A 2AFC trial shows one synthetic and one real image ("which is real?"), a 4AFC trial one
synthetic and three real images ("which is synthetic?"). Every synthetic image is in exactly
one trial; real images are dealt from a shuffled deck, shuffled again when it runs out, so
each is shown about equally often and never twice in one trial. The same seed and images
always give the same trials, in the same order and with the same screen positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TRIAL_STREAM = 1  # the trials draw from their own stream of the study seed, not the draw's


def forced_choice_trials(
    real: Sequence[int], synthetic: Sequence[int], *, alternatives: int, seed: int
) -> list[tuple[int, ...]]:
    """The trials as tuples of image ids in screen order (left to right)."""
    n_real = alternatives - 1
    if n_real < 1 or len(set(real)) < n_real:
        raise ValueError(f"{alternatives} alternatives need at least {n_real} real images")
    rng = np.random.default_rng([seed, TRIAL_STREAM])
    real, synthetic = sorted(real), sorted(synthetic)
    deck: list[int] = []
    trials = []
    for index in rng.permutation(len(synthetic)):
        chosen: list[int] = []
        while len(chosen) < n_real:
            if not deck:
                deck = [real[i] for i in rng.permutation(len(real))]
            candidate = deck.pop()
            if candidate in chosen:
                deck.insert(0, candidate)  # keep it for the next trial
            else:
                chosen.append(candidate)
        shown = [synthetic[index], *chosen]
        trials.append(tuple(shown[i] for i in rng.permutation(alternatives)))
    return trials
