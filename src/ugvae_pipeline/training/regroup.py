"""Training groups redrawn from clusters of the model's own codes, as training goes on.

``groups.training.strategy: clusters`` with ``groups.clusters.features: local_codes`` or
``mixture_probs`` starts from the pixel clusters of the grouping pipeline; every
``groups.clusters.refresh_every`` epochs the trainer encodes the training images with the model
as it is (posterior means, eval mode), runs k-means on their local codes μ_z or their mixture
probabilities π, and draws the remaining epochs' groups from those clusters with the same
Dirichlet(α) compositions (``data/grouping/clusters.py``). As the model's codes sharpen, the
clusters follow what the model itself separates, and no label is read.

The clusters of a refresh are kept in the checkpoint, so a resumed run trains on the same
groups as the run it continues; in a process group, rank 0's clusters are broadcast, so every
process takes its share of one plan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import nn

from ugvae_pipeline.data.grouping.clusters import (
    CLUSTER_FEATURES,
    check_n_clusters,
    cluster_group_plan,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterRefresh:
    """Every ``every`` epochs, k-means of the training images' ``features`` into ``n_clusters``
    (seeded by ``seed``) and a new plan of groups of ``group_size`` for the epochs left (drawn
    from ``plan_seed`` and the epoch). ``indices``: the training images' rows."""

    indices: np.ndarray
    features: str
    n_clusters: int
    alpha: float
    every: int
    seed: int
    plan_seed: int
    group_size: int
    chunk: int = 4096  # images encoded per forward pass

    def __post_init__(self) -> None:
        if self.features not in CLUSTER_FEATURES[1:]:
            raise ValueError(
                f"groups.clusters.features={self.features!r} is not refreshed from the model; "
                f"choose one of {list(CLUSTER_FEATURES[1:])} (pixels: the grouping pipeline's clusters)"
            )
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(
                f"groups.clusters.refresh_every must be an integer >= 1, got {self.every!r}"
            )
        check_n_clusters(self.n_clusters, len(self.indices))

    def signature(self) -> dict:
        """What a resumed run must share with the run it continues."""
        return {
            "features": self.features,
            "n_clusters": self.n_clusters,
            "alpha": self.alpha,
            "every": self.every,
            "seed": self.seed,
        }

    def due(self, epoch: int, last_epoch: int) -> bool:
        """Whether the groups are redrawn after ``epoch`` (never after the last)."""
        return epoch % self.every == 0 and epoch < last_epoch

    @torch.no_grad()
    def clusters(self, model: nn.Module, pixels) -> np.ndarray:
        """Each training image's cluster ``[N]``: k-means of the model's codes now.

        ``pixels`` turns index arrays ``[g, B]`` into pixel tensors on the model's device (the
        trainer's ``GroupBatcher``). The images are encoded as groups of one, so every code is
        the image's own (in UG-VAE μ_z and π do not depend on the group)."""
        was_training = model.training
        model.eval()
        try:
            parts = []
            for first in range(0, len(self.indices), self.chunk):
                index = self.indices[first : first + self.chunk, None]  # [n, 1]: groups of one
                encoding = model.encode(pixels(index))
                if self.features == "local_codes":
                    code = encoding.local_mean
                else:
                    code = encoding.mixture_probs
                parts.append(code[:, 0].float().cpu().numpy())
        finally:
            model.train(was_training)
        codes = np.concatenate(parts)
        return KMeans(self.n_clusters, n_init=3, random_state=self.seed).fit_predict(codes)

    def plan(self, clusters: np.ndarray, epoch: int, last_epoch: int) -> np.ndarray:
        """Groups ``[last_epoch - epoch, n_groups, B]`` for the epochs after ``epoch``."""
        seed = int(np.random.SeedSequence([self.plan_seed, epoch]).generate_state(1)[0])
        return cluster_group_plan(
            self.indices, clusters, self.group_size, last_epoch - epoch, self.alpha, seed
        )


def shared_clusters(clusters: np.ndarray | None, n_images: int, device: torch.device) -> np.ndarray:
    """Rank 0's ``clusters`` on every process of a process group (the others pass None)."""
    buffer = torch.zeros(n_images, dtype=torch.long, device=device)
    if clusters is not None:
        buffer.copy_(torch.as_tensor(clusters, dtype=torch.long))
    torch.distributed.broadcast(buffer, src=0)
    return buffer.cpu().numpy()


def redraw(
    refresh: ClusterRefresh, plan: np.ndarray, clusters: np.ndarray, epoch: int
) -> np.ndarray:
    """``plan [E, n, B]`` with the epochs after ``epoch`` drawn from ``clusters``."""
    fresh = refresh.plan(clusters, epoch, len(plan))
    if fresh.shape[1:] != plan.shape[1:]:
        raise ValueError(
            f"a redrawn plan has groups {list(fresh.shape[1:])}, the plan {list(plan.shape[1:])}"
        )
    return np.concatenate([plan[:epoch], fresh])
