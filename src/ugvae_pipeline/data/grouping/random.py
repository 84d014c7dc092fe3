"""Random groups: uniform draws without replacement, for training plans redrawn every epoch
and for random evaluation (reference) groups."""

from __future__ import annotations

import numpy as np

from ugvae_pipeline.data.grouping.common import check_group_size


def sample_groups(
    pool: np.ndarray,
    n_groups: int,
    group_size: int,
    rng: np.random.Generator,
    what: str = "images available",
) -> np.ndarray:
    """``n_groups`` groups ``[n_groups, B]`` of ``pool``, each a uniform draw without replacement.

    Vectorised: rows of independent permutations of the pool are cut into groups of B, so the
    work and memory are about the size of the output (at most twice), whatever ``n_groups``.
    Groups cut from the same permutation are disjoint.
    """
    pool = np.asarray(pool, dtype=np.int64)
    check_group_size(len(pool), group_size, what)
    per_permutation = len(pool) // group_size
    n_permutations = -(-n_groups // per_permutation)
    order = rng.permuted(np.tile(np.arange(len(pool)), (n_permutations, 1)), axis=1)
    groups = order[:, : per_permutation * group_size].reshape(-1, group_size)[:n_groups]
    return pool[groups]


def random_group_plan(indices: np.ndarray, group_size: int, epochs: int, seed: int) -> np.ndarray:
    """I.i.d. random groups, redrawn every epoch: ``[epochs, len(indices) // B, B]``.

    Each epoch is a fresh permutation of ``indices`` cut into groups of B (the remainder that
    does not fill a group is left out of that epoch), so every image is seen about once per epoch.
    """
    check_group_size(len(indices), group_size, "training images")
    rng = np.random.default_rng(seed)
    n_groups = len(indices) // group_size
    plan = np.stack([rng.permutation(indices)[: n_groups * group_size] for _ in range(epochs)])
    return plan.reshape(epochs, n_groups, group_size).astype(np.int64)


def random_groups(indices: np.ndarray, n_groups: int, group_size: int, seed: int) -> np.ndarray:
    """``n_groups`` random groups ``[n_groups, B]``, each drawn without replacement."""
    return sample_groups(indices, n_groups, group_size, np.random.default_rng(seed))
