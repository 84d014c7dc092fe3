import tracemalloc

import numpy as np

from ugvae_pipeline.evaluation import baselines
from ugvae_pipeline.evaluation.alignment import (
    cross_domain_knn_accuracy,
    domain_accuracy,
    symmetric_cross_domain_knn_accuracy,
)


def test_label_histogram_counts_labels():
    labels = np.array([0, 1, 1, 2, 2, 2])
    groups = np.array([[0, 1, 2, 3], [3, 4, 5, 5]])
    hist = baselines.label_histogram(labels, groups, n_classes=3)
    np.testing.assert_allclose(hist, [[0.25, 0.5, 0.25], [0.0, 0.0, 1.0]])


def test_mean_image_and_mean_local_code():
    images = np.stack([np.full((1, 2, 2), v, np.uint8) for v in (0, 255, 51)])
    groups = np.array([[0, 1], [1, 2]])
    np.testing.assert_allclose(
        baselines.mean_image(images, groups, chunk=1), [[0.5] * 4, [0.6] * 4], atol=1e-6
    )
    local = np.arange(12, dtype=float).reshape(2, 3, 2)
    np.testing.assert_allclose(baselines.mean_local_code(local), [[2, 3], [8, 9]])


def test_mean_image_of_celeba_size_groups_is_float32_exact_and_memory_bounded():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(1500, 3, 64, 64), dtype=np.uint8)
    groups = rng.integers(0, 1500, size=(150, 128))
    tracemalloc.start()
    try:
        means = baselines.mean_image(images, groups)
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert means.shape == (150, 3 * 64 * 64) and means.dtype == np.float32
    # output 7 MB + one 32 MB uint8 chunk; a float copy of 64 groups would be 400 MB
    assert peak_mb < 80, f"{peak_mb:.0f} MB"
    for g in (0, 77, 149):
        expected = images[groups[g]].reshape(128, -1).astype(np.float64).mean(0) / 255
        np.testing.assert_allclose(means[g], expected, rtol=1e-6)


def test_cross_domain_knn_shared_vs_shifted_space():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 4)) * 6
    labels = np.repeat(np.arange(10), 30)
    a = centres[labels] + rng.normal(size=(300, 4))
    b = centres[labels] + rng.normal(size=(300, 4))
    assert cross_domain_knn_accuracy(a, labels, b, labels) > 0.95
    permuted = centres[(labels + 1) % 10] + rng.normal(size=(300, 4))  # B's classes swapped places
    assert cross_domain_knn_accuracy(a, labels, permuted, labels) < 0.05
    assert symmetric_cross_domain_knn_accuracy(a, labels, b, labels) > 0.95


def test_domain_accuracy():
    rng = np.random.default_rng(1)
    codes = np.concatenate([rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) + 8])
    domains = np.repeat(["mnist", "uci"], 30)
    assert domain_accuracy(codes, domains) == 1.0
    assert domain_accuracy(rng.normal(size=(60, 3)), domains) < 0.75
