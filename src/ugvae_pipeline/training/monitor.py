"""What the group code learns over training: scores on validation groups every few epochs.

Every ``train.monitor_every`` epochs, and at the last epoch, the trainer (rank 0, between
epochs, never inside a step) hands the model to a :class:`GroupCodeMonitor`. It encodes fixed
*validation* groups built by the structured strategy of the evaluation (digit series for the
digit sources, attribute, domain or folder groups) from validation images, with posterior
means in eval mode and without gradients, and scores each representation of the groups:

- ``global_code``: the group code μ_β (UG-VAE; ML-VAE's content code, the Neural
  Statistician's context); absent for models without a group latent, whose group code *is*
  the mean local code;
- ``mean_local_code``: the group mean of the local codes μ_z;
- ``mean_mixture_probs``: the group mean of the responsibilities π (mixture models);
- ``mean_image``: the group mean of the pixels (scored once; it does not train).

Each gets the linear-SVM accuracy (5-fold stratified cross-validation) and the k-means ARI of
the group types, the same functions as the evaluation (``evaluation/metrics.py``), as history
columns ``val_<representation>_svm_linear`` and ``val_<representation>_kmeans_ari``, plus
``val_global_code_spread`` (models with a group latent: the between-group spread of μ_β over
its posterior std, ``evaluation.metrics.spread_ratio``) and ``val_seconds`` (the monitor's own
wall time in that epoch). The labels only name the group
types the scores compare with; the model never sees them, and the test images are never used.

The monitor draws no random number from any global generator (the encoding uses posterior
means; k-means and the folds are seeded with their own ``seed``), so turning it on or off
leaves the trained weights unchanged.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from ugvae_pipeline.evaluation.baselines import mean_image
from ugvae_pipeline.evaluation.metrics import clustering_scores, spread_ratio, svm_accuracy

log = logging.getLogger(__name__)

FOLDS = 5
"""Cross-validation folds of the SVM: every group type needs at least this many groups."""

REPRESENTATIONS = ("global_code", "mean_local_code", "mean_mixture_probs", "mean_image")
SCORES = ("svm_linear", "kmeans_ari")


def group_code_name(model: nn.Module) -> str:
    """The representation that is the model's group code: ``global_code`` for models with a
    group latent, ``mean_local_code`` for the others (their encoding's group mean is that)."""
    return "global_code" if getattr(model, "has_group_latent", True) else "mean_local_code"


def check_validation_groups(groups: np.ndarray, group_types: np.ndarray) -> str | None:
    """Why these groups cannot be scored (None: they can): at least two group types, each of
    at least :data:`FOLDS` groups."""
    groups, types = np.asarray(groups), np.asarray(group_types)
    if groups.ndim != 2 or len(groups) != len(types):
        return (
            f"validation groups must be [n_groups, B] with one group type each, got "
            f"{list(groups.shape)} groups and {len(types)} types"
        )
    names, counts = np.unique(types.astype(str), return_counts=True)
    if len(names) < 2:
        return f"they hold {len(names)} group type(s), need at least two"
    if counts.min() < FOLDS:
        small = {str(n): int(c) for n, c in zip(names, counts) if c < FOLDS}
        return f"every group type needs at least {FOLDS} groups (the SVM's folds), got {small}"
    return None


class GroupCodeMonitor:
    """Scores a model's group code on fixed validation groups (module docstring).

    Args:
        groups: ``[n_groups, B]`` indices of validation images.
        group_types: ``[n_groups]`` the type of each group (e.g. the series it follows).
        every: score every this many epochs (and at the last epoch).
        seed: seeds k-means and the SVM's folds.
        chunk: groups encoded per forward pass.

    Raises:
        ValueError: groups that cannot be scored (:func:`check_validation_groups`).
    """

    def __init__(
        self,
        groups: np.ndarray,
        group_types: np.ndarray,
        every: int,
        seed: int = 0,
        chunk: int = 16,
    ):
        reason = check_validation_groups(groups, group_types)
        if reason is not None:
            raise ValueError(f"cannot score these validation groups: {reason}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"the monitor's interval must be an integer >= 1, got {every!r}")
        self.groups = np.asarray(groups, dtype=np.int64)
        self.group_types = np.asarray(group_types).astype(str)
        self.every = every
        self.seed = seed
        self.chunk = chunk
        self._mean_image: dict[str, float] | None = None  # scored once

    def due(self, epoch: int, last_epoch: int) -> bool:
        """Whether ``epoch`` is scored: every ``every`` epochs and the last one."""
        return epoch % self.every == 0 or epoch == last_epoch

    def _scores(self, name: str, codes: np.ndarray) -> dict[str, float]:
        types = self.group_types
        return {
            f"val_{name}_svm_linear": svm_accuracy(
                codes, types, "linear", folds=FOLDS, seed=self.seed
            ),
            f"val_{name}_kmeans_ari": clustering_scores(codes, types, "kmeans", self.seed)["ari"],
        }

    @torch.no_grad()
    def __call__(self, model: nn.Module, pixels, images: np.ndarray) -> dict[str, float]:
        """The scores of ``model`` now: ``val_<representation>_<score>`` and ``val_seconds``.

        ``pixels`` turns index arrays ``[g, B]`` into pixel tensors ``[g, B, C, H, W]`` on the
        model's device (the trainer's ``GroupBatcher``); ``images`` (uint8 ``[N, C, H, W]``)
        give the mean image. The model is scored in eval mode and left in the mode it was in.
        """
        start = time.perf_counter()
        was_training = model.training
        model.eval()
        try:
            parts: dict[str, list[np.ndarray]] = {"global": [], "var": [], "local": [], "probs": []}
            for first in range(0, len(self.groups), self.chunk):
                encoding = model.encode(pixels(self.groups[first : first + self.chunk]))
                parts["global"].append(encoding.global_mean.float().cpu().numpy())
                parts["var"].append(encoding.global_var.float().cpu().numpy())
                parts["local"].append(encoding.local_mean.float().mean(1).cpu().numpy())
                parts["probs"].append(encoding.mixture_probs.float().mean(1).cpu().numpy())
        finally:
            model.train(was_training)
        codes = {name: np.concatenate(values) for name, values in parts.items()}
        row: dict[str, float] = {}
        if getattr(model, "has_group_latent", True):
            row.update(self._scores("global_code", codes["global"]))
            row["val_global_code_spread"] = spread_ratio(codes["global"], codes["var"])
        row.update(self._scores("mean_local_code", codes["local"]))
        if codes["probs"].shape[1] > 1:  # mixture models
            row.update(self._scores("mean_mixture_probs", codes["probs"]))
        if self._mean_image is None:
            self._mean_image = self._scores("mean_image", mean_image(images, self.groups))
        row.update(self._mean_image)
        row["val_seconds"] = time.perf_counter() - start
        return row
