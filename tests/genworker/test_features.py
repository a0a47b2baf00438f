import numpy as np
import pytest
import scipy.stats
import torch

from genworker.cohorts import Cohort
from genworker.features import FeatureNet, pixel_descriptor, train_feature_net

SIZE = 32


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def toy_cohort(n_tracks=48, timepoints=5, seed=0):
    """Blurry ellipses (the subject) with a bright disc whose radius grows with severity.

    Every fourth track is "normal" (severity 0, no disc); the last quarter of
    the tracks is held out.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    rows = []
    for track in range(n_tracks):
        cy, cx, ry, rx = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), *rng.uniform(0.3, 0.45, 2)
        anatomy = 0.5 * (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1)
        anatomy = anatomy + 0.1 * rng.random((SIZE, SIZE))
        ly, lx = rng.uniform(0.35, 0.65, 2)
        normal = track % 4 == 0
        for severity in [0.0] * timepoints if normal else np.linspace(0.2, 1, timepoints):
            mask = np.hypot(yy - ly, xx - lx) < 0.05 + 0.2 * severity if not normal else None
            mask = np.zeros((SIZE, SIZE), bool) if mask is None else mask
            image = np.clip(np.where(mask, 0.95, anatomy), 0, 1)
            rows.append((image, mask, 0 if normal else 1, severity, track))
    images, masks, finding, severity, track = (
        np.array(column) for column in zip(*rows, strict=True)
    )
    return Cohort(
        name="toy",
        findings=("normal", "lesion"),
        images=images.astype(np.float32),
        masks=masks,
        finding=finding.astype(np.int64),
        severity=severity.astype(np.float32),
        age=np.full(len(images), 50.0, np.float32),
        sex=(track % 2).astype(np.int8),
        track=track.astype(np.int64),
        held_out=track >= n_tracks * 3 // 4,
        seed=seed,
        modality="MR",
    )


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    cohort = toy_cohort()
    return cohort, train_feature_net(cohort.train(), epochs=8, seed=0, width=8, batch_size=16)


def test_severity_predictions_follow_the_truth_on_held_out_subjects(trained):
    cohort, net = trained
    held_out = cohort.held_out_part()
    predicted = net.predict_severity(held_out.images)
    assert predicted.shape == (len(held_out.images),)
    assert scipy.stats.spearmanr(predicted, held_out.severity).statistic > 0.8


def test_embeddings_separate_normal_from_lesion(trained):
    cohort, net = trained
    held_out = cohort.held_out_part()
    features = net.embed(held_out.images)
    assert features.shape == (len(held_out.images), net.config.feature_dim)
    logits = net(torch.as_tensor(held_out.images))[1]
    accuracy = (logits.argmax(1).numpy() == held_out.finding).mean()
    assert accuracy > 0.9


def test_training_is_deterministic_for_a_seed():
    cohort = toy_cohort(n_tracks=8, timepoints=3)
    a = train_feature_net(cohort, epochs=1, seed=3, width=4)
    b = train_feature_net(cohort, epochs=1, seed=3, width=4)
    c = train_feature_net(cohort, epochs=1, seed=4, width=4)
    assert np.array_equal(a.embed(cohort.images), b.embed(cohort.images))
    assert not np.array_equal(a.embed(cohort.images), c.embed(cohort.images))


def test_save_and_load_round_trip(trained, tmp_path):
    cohort, net = trained
    path = tmp_path / "features.pt"
    net.save(path)
    assert torch.load(path, weights_only=True)["config"]["findings"] == ["normal", "lesion"]
    loaded = FeatureNet.load(path)
    assert loaded.config == net.config
    np.testing.assert_array_equal(loaded.embed(cohort.images[:5]), net.embed(cohort.images[:5]))


def test_pixel_descriptor_ignores_brightness_and_tells_subjects_apart():
    cohort = toy_cohort(n_tracks=4, timepoints=2)
    a, b = cohort.images[0], cohort.images[4]  # two subjects
    descriptors = pixel_descriptor(np.stack([a, 0.5 * a + 0.2, b]), size=16)
    assert descriptors.shape == (3, 256)
    assert np.allclose(np.linalg.norm(descriptors, axis=1), 1.0, atol=1e-5)
    assert np.linalg.norm(descriptors[0] - descriptors[1]) < 1e-5
    assert np.linalg.norm(descriptors[0] - descriptors[2]) > 0.1
