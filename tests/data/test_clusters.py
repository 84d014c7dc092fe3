"""Training groups with structure formed without labels: pixel clusters, Dirichlet compositions."""

import numpy as np
import pytest

from ugvae_pipeline.data.grouping import cluster_group_plan, pixel_clusters, split_indices
from ugvae_pipeline.data.sources import load_embedded_mnist
from ugvae_pipeline.pipelines.grouping.nodes import build_training_groups


@pytest.fixture(scope="module")
def digits():
    images, metadata = load_embedded_mnist(0.1, 0.2, 0)
    return images, metadata


def _share_variance_ratio(plan, clusters_of, share, alpha_k_share, group_size):
    """Measured variance across groups of each cluster's share in a group, over what a
    Dirichlet-multinomial gives: share(1 - share)/B · (1 + (B - 1)/(α·k + 1))."""
    groups = plan.reshape(-1, group_size)
    k = len(share)
    counts = np.stack([(clusters_of[groups] == c).sum(1) for c in range(k)], axis=1) / group_size
    expected = share * (1 - share) / group_size * (1 + (group_size - 1) / (alpha_k_share + 1))
    return counts.var(axis=0, ddof=1) / expected


@pytest.mark.parametrize("alpha, dirichlet_factor", [(0.1, 1.0), (1e6, 1e7)])
def test_group_compositions_have_the_dirichlet_multinomial_spread(digits, alpha, dirichlet_factor):
    images, metadata = digits
    train = split_indices(metadata, "train")
    clusters = pixel_clusters(images[train], 10, 30, seed=0)
    assert sorted(np.unique(clusters)) == list(range(10))
    clusters_of = np.full(len(metadata), -1)
    clusters_of[train] = clusters
    plan = cluster_group_plan(train, clusters, 32, epochs=20, alpha=alpha, seed=1)
    assert plan.shape == (20, len(train) // 32, 32)
    assert np.isin(plan, train).all()  # training images only
    # The concentrations α·k·share sum to α·k, which sets the Dirichlet-multinomial variance.
    # With 2,180 groups the variance estimate's relative sd is about 3 % (α large) to 6 % (α
    # small: skewed Beta shares; seeds 1-5 gave ratios 0.87-1.16); numpy's Generator draws the
    # same numbers on every CPU. The bounds are ±30 %. A plan that ignored the compositions
    # (random groups) would measure 1/(1 + 31/2) = 0.06 at α = 0.1.
    share = np.bincount(clusters) / len(clusters)
    ratio = _share_variance_ratio(plan, clusters_of, share, alpha * 10, 32)
    assert ratio.min() > 0.7 and ratio.max() < 1.3, ratio


def test_small_alpha_gives_groups_of_few_clusters(digits):
    images, metadata = digits
    train = split_indices(metadata, "train")
    clusters = pixel_clusters(images[train], 10, 30, seed=0)
    plan = cluster_group_plan(train, clusters, 32, epochs=2, alpha=0.01, seed=1)
    clusters_of = dict(zip(train, clusters))
    top_share = [np.bincount([clusters_of[i] for i in g]).max() / 32 for g in plan.reshape(-1, 32)]
    assert np.mean(top_share) > 0.9


def test_the_training_plan_never_reads_labels(digits):
    images, metadata = digits
    shuffled = metadata.copy()
    shuffled["label"] = np.random.default_rng(0).permutation(metadata["label"].to_numpy())
    params = {
        "training": {"strategy": "clusters"},
        "clusters": {"n_clusters": 5, "alpha": 0.1, "pca_dims": 20, "seed": 0},
    }
    train = {"group_size": 64, "epochs": 2, "seed": 3}
    plan = build_training_groups(images, metadata, train, params, {"name": "ugvae"})
    again = build_training_groups(images, shuffled, train, params, {"name": "ugvae"})
    np.testing.assert_array_equal(plan, again)
    assert plan.shape == (2, 3500 // 64, 64)


def test_bad_cluster_parameters_are_named(digits):
    images, metadata = digits
    train = split_indices(metadata, "train")
    with pytest.raises(ValueError, match=r"groups.clusters.n_clusters must be in \[2, 3500\]"):
        pixel_clusters(images[train], 1, 10, seed=0)
    with pytest.raises(ValueError, match=r"groups.clusters.alpha must be > 0"):
        cluster_group_plan(train, np.zeros(len(train), dtype=int), 8, 1, 0.0, 0)
