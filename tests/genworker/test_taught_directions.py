"""Directions taught from labelled samples: an unconditional imported model learns where its
finding lies in w from an educator's labels, and a series walks along it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from genworker.loading import load_model
from genworker.sampling import SeriesSpec, progression_batch
from genworker.stylegan.convert import CardFields, import_network_pickle
from genworker.stylegan.direction_fit import (
    MIN_PER_LABEL,
    PREVIEW_SEVERITIES,
    SAMPLE_SEEDS,
    fit_direction,
)
from genworker.stylegan.directions import (
    png_bytes,
    preview_series,
    sample_pictures,
    sample_ws,
    strip_png,
    with_directions,
)
from tests.stylegan_pickles import needs_pickles, pickle_path


@pytest.fixture(scope="module")
def unconditional(tmp_path_factory):
    if not pickle_path("stylegan2-ada-uncond-rgb32").is_file():
        pytest.skip("the StyleGAN pickle fixtures are absent")
    out = tmp_path_factory.mktemp("taught") / "uncond.pt"
    fields = CardFields("DX", ("nodule",), teach_findings=True)
    import_network_pickle(pickle_path("stylegan2-ada-uncond-rgb32"), out, fields)
    return out


def known_function(w_dim: int) -> np.ndarray:
    """A fixed linear function of w, the "finding" the labels follow."""
    u = np.random.default_rng(7).standard_normal(w_dim)
    return u / np.linalg.norm(u)


def test_a_direction_fitted_to_labels_of_a_linear_function_points_along_it():
    rng = np.random.default_rng(0)
    ws = rng.standard_normal((60, 16)) * rng.uniform(0.5, 2.0, 16)
    u = known_function(16)
    fitted = fit_direction(ws, ws @ u > np.median(ws @ u))
    cosine = fitted.vector @ u / np.linalg.norm(fitted.vector)
    assert cosine > 0.8
    assert fitted.training_accuracy > 0.9
    assert (fitted.positives, fitted.negatives) == (30, 30)
    assert fitted.vector.dtype == np.float32


def test_labels_flipped_flip_the_direction():
    ws = np.random.default_rng(1).standard_normal((40, 8))
    labels = ws[:, 0] > 0
    forward = fit_direction(ws, labels).vector
    backward = fit_direction(ws, ~labels).vector
    np.testing.assert_allclose(forward, -backward, rtol=1e-5, atol=1e-6)


def test_too_few_labels_on_one_side_are_refused_with_the_counts():
    ws = np.random.default_rng(2).standard_normal((40, 8))
    labels = np.zeros(40, bool)
    labels[: MIN_PER_LABEL - 1] = True
    with pytest.raises(ValueError, match=f"shows the finding: {MIN_PER_LABEL - 1}, does not: "):
        fit_direction(ws, labels)
    with pytest.raises(ValueError, match="3 labels"):
        fit_direction(ws, [True, False, True])


def test_the_upload_page_names_the_findings_an_unconditional_model_will_be_taught(unconditional):
    card = json.loads(unconditional.with_suffix(".card.json").read_text())
    assert card["classes"] == []
    assert card["taught_findings"] == ["nodule"]
    assert card["conditions"]["findings"] == ["nodule"]
    assert load_model(unconditional).directions == {}


@needs_pickles
def test_findings_to_teach_must_be_distinct_and_not_normal(tmp_path):
    fields = CardFields("DX", ("nodule", "normal"), teach_findings=True)
    with pytest.raises(ValueError, match="distinct and not 'normal'"):
        import_network_pickle(pickle_path("stylegan2-ada-uncond-rgb32"), tmp_path / "m.pt", fields)


def test_a_taught_direction_walks_the_series_monotonically_in_the_labelled_function(
    unconditional, one_torch_thread
):
    model = load_model(unconditional)
    assert len(SAMPLE_SEEDS) >= 40
    ws = sample_ws(model, SAMPLE_SEEDS)
    u = known_function(model.generator.w_dim)
    scores = ws @ u
    fitted = fit_direction(ws, scores > np.median(scores))

    taught = with_directions(model, {"nodule": fitted.vector})
    assert model.directions == {}  # the loaded model is left as it was
    z = np.random.default_rng(3).standard_normal(model.z_dim).astype(np.float32)
    spec = SeriesSpec(z, "nodule", PREVIEW_SEVERITIES, 50, "F", method="direction")
    (series,) = progression_batch(taught, [spec])
    assert np.all(np.diff(series.w @ u) > 0)
    np.testing.assert_allclose(series.w[-1] - series.w[0], fitted.vector, atol=1e-5)
    # 48 labels in a 32-dimensional w find the function's direction roughly, not exactly.
    assert fitted.vector @ u / np.linalg.norm(fitted.vector) > 0.5
    assert not np.allclose(series.images[0], series.images[-1])


def test_samples_and_the_preview_are_pictures_for_the_page(unconditional, one_torch_thread):
    model = load_model(unconditional)
    pictures = sample_pictures(model, SAMPLE_SEEDS[:3])
    assert pictures.shape == (3, 32, 32)
    assert pictures.min() >= 0
    assert pictures.max() <= 1
    assert not np.allclose(pictures[0], pictures[1])
    direction = np.ones(model.generator.w_dim, np.float32)
    preview = preview_series(model, direction)
    assert preview.shape == (5, 32, 32)
    assert Image.open(io.BytesIO(png_bytes(pictures[0]))).size == (32, 32)
    assert Image.open(io.BytesIO(strip_png(preview))).size == (5 * 32 + 4 * 2, 32)


def test_a_direction_of_the_wrong_length_is_refused(unconditional):
    model = load_model(unconditional)
    with pytest.raises(ValueError, match="has 3 values"):
        with_directions(model, {"nodule": [1.0, 2.0, 3.0]})
