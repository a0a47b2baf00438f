"""The decoded anatomy's quantile map: fitted, it gives decoded maps the simulation's
distribution of values, channel by channel, and leaves the channels it does not map."""

from __future__ import annotations

import numpy as np

from genworker.latent.anatomy_map import AnatomyMap, fit_anatomy_map


def _lungs(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 3, 32, 32] maps: channel 0 a lung (zero outside, thickness in dm inside)."""
    maps = rng.gamma(2.0, 0.1, (n, 3, 32, 32)).astype(np.float32)
    maps[:, 0, :, :12] = 0.0
    return maps


def _decoded(simulated: np.ndarray) -> np.ndarray:
    """Decoded as the chest decoder does it: thin lung too thick, the field's edge spread."""
    decoded = simulated.copy()
    decoded[:, 0] = np.where(simulated[:, 0] > 0, simulated[:, 0] * 1.3 + 0.02, 0.0)
    decoded[:, 0, :, 10:12] = 0.01
    return decoded


def test_a_fitted_map_gives_decoded_maps_the_simulations_values():
    rng = np.random.default_rng(0)
    simulated = _lungs(rng, 40)
    fitted = fit_anatomy_map(_decoded(simulated), simulated, [0])
    fresh = _lungs(np.random.default_rng(1), 10)
    decoded = _decoded(fresh)
    mapped = np.stack([fitted.mapped(maps) for maps in decoded])

    levels = np.linspace(0.1, 0.99, 12)
    got, wanted = np.quantile(mapped[:, 0], levels), np.quantile(fresh[:, 0], levels)
    np.testing.assert_allclose(got, wanted, atol=0.01)
    assert np.abs(np.quantile(decoded[:, 0], levels) - wanted).max() > 0.05  # it was off
    np.testing.assert_array_equal(mapped[:, 1:], decoded[:, 1:])  # not asked: left alone
    assert np.all(mapped[:, 0][decoded[:, 0] == 0] == 0)  # a tie of zeros maps onto zero


def test_the_map_keeps_the_order_of_values_and_shifts_beyond_what_it_was_fitted_on():
    rng = np.random.default_rng(2)
    simulated = _lungs(rng, 20)
    fitted = fit_anatomy_map(_decoded(simulated), simulated, [0])
    ramp = np.zeros((3, 1, 400), np.float32)
    ramp[0, 0] = np.linspace(0.0, 5.0, 400)
    mapped = fitted.mapped(ramp)[0, 0]
    assert np.all(np.diff(mapped) >= 0)
    top = float(fitted.decoded[0, -1])
    beyond = ramp[0, 0] > top
    assert beyond.any()
    np.testing.assert_allclose(np.diff(mapped[beyond]), np.diff(ramp[0, 0][beyond]), rtol=1e-4)


def test_an_unfitted_map_changes_nothing():
    maps = np.random.default_rng(3).gamma(2.0, 0.5, (3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(AnatomyMap([0, 1]).mapped(maps), maps, rtol=1e-6)
