"""Random groups: uniform draws without replacement, for training plans redrawn every epoch,
held-out groups and random evaluation (reference) groups."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping.common import check_group_size, split_indices

log = logging.getLogger(__name__)


def sample_groups(
    pool: np.ndarray,
    n_groups: int,
    group_size: int,
    rng: np.random.Generator,
    what: str = "images available",
    parameter: str | None = None,
    fixes: str = "",
) -> np.ndarray:
    """``n_groups`` groups ``[n_groups, B]`` of ``pool``, each a uniform draw without replacement.

    Vectorised: rows of independent permutations of the pool are cut into groups of B, so the
    work and memory are about the size of the output (at most twice), whatever ``n_groups``.
    Groups cut from the same permutation are disjoint. A pool smaller than B is an error naming
    ``parameter``, the parameter that set B (see :func:`check_group_size`).
    """
    pool = np.asarray(pool, dtype=np.int64)
    check_group_size(len(pool), group_size, what, parameter, fixes)
    per_permutation = len(pool) // group_size
    n_permutations = -(-n_groups // per_permutation)
    order = rng.permuted(np.tile(np.arange(len(pool)), (n_permutations, 1)), axis=1)
    groups = order[:, : per_permutation * group_size].reshape(-1, group_size)[:n_groups]
    return pool[groups]


def random_group_plan(indices: np.ndarray, group_size: int, epochs: int, seed: int) -> np.ndarray:
    """I.i.d. random groups, redrawn every epoch: ``[epochs, len(indices) // B, B]``.

    Each epoch is a fresh permutation of ``indices`` cut into groups of B (the remainder that
    does not fill a group is left out of that epoch), so every image is seen about once per epoch.
    B is ``train.group_size``.
    """
    check_group_size(len(indices), group_size, "training images", "train.group_size")
    rng = np.random.default_rng(seed)
    n_groups = len(indices) // group_size
    plan = np.stack([rng.permutation(indices)[: n_groups * group_size] for _ in range(epochs)])
    return plan.reshape(epochs, n_groups, group_size).astype(np.int64)


def random_groups(
    indices: np.ndarray,
    n_groups: int,
    group_size: int,
    seed: int,
    what: str = "images available",
    parameter: str | None = None,
    fixes: str = "",
) -> np.ndarray:
    """``n_groups`` random groups ``[n_groups, B]``, each drawn without replacement (``what``,
    ``parameter`` and ``fixes`` word the error of a pool smaller than B)."""
    return sample_groups(
        indices, n_groups, group_size, np.random.default_rng(seed), what, parameter, fixes
    )


def heldout_groups(
    metadata: pd.DataFrame,
    n_groups: int,
    group_size: int | None,
    seed: int,
    train_group_size: int,
) -> np.ndarray:
    """Random groups ``[n_groups, B]`` of ``validation`` images, for the held-out loss.

    ``group_size`` (``groups.heldout.group_size``) ``None``: the training group size
    (``train.group_size``), at most the validation images, so a small validation split still
    measures a held-out loss (with a warning when the groups are smaller than the training
    ones). A size given is used as given: larger than the validation split is an error naming
    ``groups.heldout.group_size``. Where the split holds fewer than ``n_groups * B`` images,
    groups share images (each group is still B distinct images).
    """
    pool = split_indices(metadata, "validation")
    if group_size is not None:
        return random_groups(
            pool,
            n_groups,
            group_size,
            seed,
            "validation images",
            "groups.heldout.group_size",
            " (or to null: train.group_size, at most the validation images)",
        )
    size = min(train_group_size, len(pool))
    if size < train_group_size:
        log.warning(
            "held-out groups of %d images: groups.heldout.group_size is null (train.group_size=%d) "
            "but the validation split holds only %d images; the held-out loss is measured on "
            "smaller groups than training (a larger validation fraction, or more images, fills them)",
            size,
            train_group_size,
            len(pool),
        )
    return random_groups(pool, n_groups, size, seed, "validation images", "train.group_size")
