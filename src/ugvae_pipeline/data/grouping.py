"""Group construction: which images form each group. Only indices; the model sees pixels.

A group is a row of image indices. Training groups come as a plan ``[epochs, n_groups, B]``
(random groups are redrawn every epoch); evaluation groups as ``[n_groups, B]`` with a
metadata table (one row per group: ``group_id``, ``strategy``, ``group_type``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_indices(metadata: pd.DataFrame, split: str) -> np.ndarray:
    """Row positions of the images of one split (``train`` or ``heldout``)."""
    indices = np.flatnonzero((metadata["split"] == split).to_numpy())
    if len(indices) == 0:
        raise ValueError(f"no images in split {split!r}; splits present: {sorted(metadata['split'].unique())}")
    return indices


def _check_group_size(n_available: int, group_size: int, what: str) -> None:
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group size must be an integer >= 1, got {group_size!r}")
    if group_size > n_available:
        raise ValueError(
            f"group size {group_size} is larger than the {n_available} {what}; "
            f"lower train.group_size (or groups.*.group_size) to at most {n_available}, or use more data"
        )


def random_group_plan(indices: np.ndarray, group_size: int, epochs: int, seed: int) -> np.ndarray:
    """I.i.d. random groups, redrawn every epoch: ``[epochs, len(indices) // B, B]``.

    Each epoch is a fresh permutation of ``indices`` cut into groups of B (the remainder that
    does not fill a group is left out of that epoch), so every image is seen about once per epoch.
    """
    _check_group_size(len(indices), group_size, "training images")
    rng = np.random.default_rng(seed)
    n_groups = len(indices) // group_size
    plan = np.stack([rng.permutation(indices)[: n_groups * group_size] for _ in range(epochs)])
    return plan.reshape(epochs, n_groups, group_size).astype(np.int64)


def random_groups(indices: np.ndarray, n_groups: int, group_size: int, seed: int) -> np.ndarray:
    """``n_groups`` random groups ``[n_groups, B]``, each drawn without replacement."""
    _check_group_size(len(indices), group_size, "images available")
    rng = np.random.default_rng(seed)
    groups = [rng.choice(indices, size=group_size, replace=False) for _ in range(n_groups)]
    return np.stack(groups).astype(np.int64)


def group_table(n_groups: int, strategy: str, group_type: str | list[str]) -> pd.DataFrame:
    """Metadata of evaluation groups: one row per group."""
    types = [group_type] * n_groups if isinstance(group_type, str) else list(group_type)
    return pd.DataFrame(
        {
            "group_id": np.arange(n_groups, dtype=np.int64),
            "strategy": pd.Series([strategy] * n_groups, dtype="string"),
            "group_type": pd.Series(types, dtype="string"),
        }
    )
