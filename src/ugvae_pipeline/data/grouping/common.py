"""What every kind of group builds on: the images of a split, the group-size check, and the
table that describes evaluation groups."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_indices(metadata: pd.DataFrame, split: str) -> np.ndarray:
    """Row positions of the images of one split (``train``, ``validation`` or ``test``)."""
    indices = np.flatnonzero((metadata["split"] == split).to_numpy())
    if len(indices) == 0:
        raise ValueError(
            f"no images in split {split!r}; splits present: {sorted(metadata['split'].unique())}"
        )
    return indices


def check_group_size(
    n_available: int,
    group_size: int,
    what: str,
    parameter: str | None = None,
    fixes: str = "",
) -> None:
    """``group_size`` is an integer >= 1 and at most ``n_available`` (``what`` names them).

    The error names ``parameter``, the parameter that set the size (``train.group_size``,
    ``groups.heldout.group_size``, ``groups.<strategy>.group_size``), and the fix; ``fixes``
    adds other ways out (``", or set groups.evaluation.random.n_groups=0"``).
    """
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"{parameter or 'group size'} must be an integer >= 1, got {group_size!r}")
    if group_size > n_available:
        lower = (
            f"set {parameter} (now {group_size}) to at most {n_available}"
            if parameter
            else f"use groups of at most {n_available}"
        )
        raise ValueError(
            f"group size {group_size} is larger than the {n_available} {what}; "
            f"{lower}{fixes}, or use more images"
        )


def group_table(
    n_groups: int, strategy: str, group_type: str | list[str], **columns
) -> pd.DataFrame:
    """Metadata of evaluation groups: one row per group, then any strategy-specific ``columns``."""
    types = [group_type] * n_groups if isinstance(group_type, str) else list(group_type)
    table = pd.DataFrame(
        {
            "group_id": np.arange(n_groups, dtype=np.int64),
            "strategy": pd.Series([strategy] * n_groups, dtype="string"),
            "group_type": pd.Series(types, dtype="string"),
        }
    )
    for name, values in columns.items():
        table[name] = values
    return table
