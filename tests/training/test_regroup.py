"""Training groups redrawn from clusters of the model's own codes (groups.clusters.features)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from ugvae_pipeline.data.grouping import random_group_plan, split_indices
from ugvae_pipeline.data.sources import load_embedded_mnist
from ugvae_pipeline.models import UGVAE, UGVAEConfig
from ugvae_pipeline.pipelines.training.nodes import cluster_refresh
from ugvae_pipeline.training.batching import GroupBatcher
from ugvae_pipeline.training.regroup import ClusterRefresh, redraw


@pytest.fixture(scope="module")
def digits():
    images, metadata = load_embedded_mnist(0.1, 0.2, 0)
    return images, metadata, split_indices(metadata, "train")


def _refresh(train, features="local_codes", alpha=0.01, chunk=1000):
    return ClusterRefresh(train, features, 6, alpha, 2, 0, 1, 32, chunk=chunk)


def _top_share(plan, clusters_of):
    groups = plan.reshape(-1, plan.shape[-1])
    return np.array([np.bincount(clusters_of[g]).max() / len(g) for g in groups])


def test_redrawn_groups_follow_clusters_of_the_models_own_codes(digits):
    images, _, train = digits
    torch.manual_seed(0)
    model = UGVAE(UGVAEConfig(dim_z=6, dim_beta=8, n_components=5)).eval()
    batcher = GroupBatcher(images, torch.device("cpu"))
    refresh = _refresh(train)
    clusters = refresh.clusters(model, batcher)  # encoded in chunks of 1,000 images
    # the same k-means on the local codes of all training images in one pass: chunking keeps
    # the image order. The codes may differ in the last bits between batch sizes on some CPUs,
    # which can move a point lying on a cluster boundary: ARI, not equality
    with torch.no_grad():
        codes = model.encode(batcher(train[:, None])).local_mean[:, 0].numpy()
    reference = KMeans(6, n_init=3, random_state=0).fit_predict(codes)
    assert adjusted_rand_score(reference, clusters) > 0.98
    by_probs = _refresh(train, "mixture_probs").clusters(model, batcher)
    assert adjusted_rand_score(by_probs, clusters) < 0.9  # another code, other clusters

    plan = random_group_plan(train, 32, 5, seed=1)
    redrawn = redraw(refresh, plan, clusters, epoch=2)
    assert redrawn.shape == plan.shape and np.isin(redrawn, train).all()
    np.testing.assert_array_equal(redrawn[:2], plan[:2])  # the epochs trained stay as they were
    clusters_of = np.full(len(images), -1)
    clusters_of[train] = clusters
    # α = 0.01: a group is almost all one cluster; random groups of 6 clusters are far from it
    assert _top_share(redrawn[2:], clusters_of).mean() > 0.9
    assert _top_share(plan[2:], clusters_of).mean() < 0.6
    # the draw depends on the epoch it follows, so two refreshes draw different groups
    assert not np.array_equal(redraw(refresh, plan, clusters, epoch=3)[3], redrawn[3])


def test_the_refresh_is_on_only_for_clusters_of_the_models_codes(digits):
    _, metadata, train = digits
    groups = {
        "training": {"strategy": "clusters"},
        "clusters": {
            "features": "mixture_probs",
            "n_clusters": 8,
            "alpha": 0.5,
            "refresh_every": 3,
            "seed": 0,
        },
    }
    model, train_params = {"name": "ugvae"}, {"seed": 4, "group_size": 64}
    refresh = cluster_refresh(groups, model, train_params, metadata)
    assert (refresh.features, refresh.n_clusters, refresh.every, refresh.group_size) == (
        "mixture_probs",
        8,
        3,
        64,
    )
    np.testing.assert_array_equal(refresh.indices, train)
    assert [refresh.due(e, 10) for e in range(1, 11)] == [e in (3, 6, 9) for e in range(1, 11)]
    pixels = {**groups, "clusters": {**groups["clusters"], "features": "pixels"}}
    assert cluster_refresh(pixels, model, train_params, metadata) is None
    random = {**groups, "training": {"strategy": "random"}}
    assert cluster_refresh(random, model, train_params, metadata) is None


@pytest.mark.parametrize(
    "features, every, message",
    [
        ("pixels", 2, r"features='pixels' is not refreshed .*\['local_codes', 'mixture_probs'\]"),
        ("local_codes", 0, r"refresh_every must be an integer >= 1, got 0"),
    ],
)
def test_a_refresh_that_cannot_run_is_refused_naming_the_parameter(features, every, message):
    with pytest.raises(ValueError, match=message):
        ClusterRefresh(np.arange(100), features, 4, 0.1, every, 0, 1, 32)
