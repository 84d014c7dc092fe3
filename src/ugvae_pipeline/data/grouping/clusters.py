"""Training groups with structure, formed without labels (``groups.training.strategy: clusters``).

Random training groups differ only by sampling noise in their composition, so an objective
that rewards a group code for what a group shares has little to find in them. Here the
training images are first clustered **without labels** (k-means on their pixels, after a PCA),
then every group draws its own composition over the clusters from a Dirichlet whose mean is
the clusters' share of the training images (concentrations α·k·share, k clusters: α = 1/k
with equal clusters is the flat Dirichlet) and its B members accordingly: each member's
cluster from that composition, then a uniform image of that cluster. α sets how structured
groups are: α → 0 gives groups of one cluster, α → ∞ gives every group the clusters' shares,
i.e. random groups. Groups are
redrawn every epoch, like random groups; an image may appear twice in a group (rarely, when
its cluster is large).

Labels are never read: the clustering sees pixels only, so scoring μ_β on digit series stays
a test of what the model learned without labels.
"""

from __future__ import annotations

import numpy as np

from ugvae_pipeline.data.grouping.common import check_group_size
from ugvae_pipeline.data.grouping.series import draw_by_value

# what the clusters are formed on (groups.clusters.features): the pixels (once, before
# training), or the model's own local codes or mixture probabilities, refreshed during training
CLUSTER_FEATURES = ("pixels", "local_codes", "mixture_probs")


def check_n_clusters(n_clusters: int, n_images: int) -> None:
    """k-means needs 2 <= ``groups.clusters.n_clusters`` <= the training images."""
    if not 2 <= n_clusters <= n_images:
        raise ValueError(
            f"groups.clusters.n_clusters must be in [2, {n_images}] (the training images), "
            f"got {n_clusters}"
        )


def pixel_clusters(images: np.ndarray, n_clusters: int, pca_dims: int, seed: int) -> np.ndarray:
    """Cluster of each image ``[N]`` (0..n_clusters-1): k-means on the first ``pca_dims``
    principal components of the pixels scaled to [0, 1]; ``seed`` seeds both."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    check_n_clusters(n_clusters, len(images))
    pixels = np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
    dims = min(pca_dims, *pixels.shape)
    features = PCA(dims, svd_solver="randomized", random_state=seed).fit_transform(pixels)
    return KMeans(n_clusters, n_init=3, random_state=seed).fit_predict(features).astype(np.int64)


def cluster_group_plan(
    indices: np.ndarray,
    clusters: np.ndarray,
    group_size: int,
    epochs: int,
    alpha: float,
    seed: int,
) -> np.ndarray:
    """Training plan ``[epochs, len(indices) // B, B]`` of groups with Dirichlet compositions.

    Args:
        indices: the training images' row positions ``[N]``.
        clusters: each training image's cluster ``[N]`` (from :func:`pixel_clusters`).
        group_size: B (``train.group_size``).
        epochs: plans drawn, one per epoch.
        alpha: the Dirichlet's concentration per cluster, relative to its share (> 0).
        seed: draws the compositions, the members' clusters and the images.
    """
    indices, clusters = np.asarray(indices, dtype=np.int64), np.asarray(clusters, dtype=np.int64)
    check_group_size(len(indices), group_size, "training images", "train.group_size")
    if not alpha > 0:
        raise ValueError(f"groups.clusters.alpha must be > 0, got {alpha!r}")
    kinds = np.unique(clusters)
    rng = np.random.default_rng(seed)
    n_groups = epochs * (len(indices) // group_size)
    share = np.bincount(np.searchsorted(kinds, clusters)) / len(clusters)
    composition = rng.dirichlet(alpha * len(kinds) * share, size=n_groups)  # [G, k]
    cumulative = np.cumsum(composition, axis=1)
    cumulative[:, -1] = 1.0  # rounding: every draw falls in some cluster
    u = rng.random((n_groups, group_size))
    member = np.minimum((u[:, :, None] >= cumulative[:, None, :]).sum(-1), len(kinds) - 1)
    positions = draw_by_value(kinds[member], clusters, rng)  # [G, B] positions into indices
    return indices[positions].reshape(epochs, -1, group_size)
