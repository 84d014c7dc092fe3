"""Attribute groups (CelebA): evaluation groups whose members share an attribute value, with
random groups of the same split as the reference class of the paper's SVM experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping.common import group_table, split_indices
from ugvae_pipeline.data.grouping.labels import value_groups
from ugvae_pipeline.data.grouping.random import random_groups


def attribute_groups(
    metadata: pd.DataFrame,
    group_types: list[str],
    n_groups: int,
    group_size: int,
    seed: int,
    exclusive: bool = True,
    n_random_groups: int = 0,
    split: str = "test",
) -> tuple[np.ndarray, pd.DataFrame]:
    """Groups of ``split`` images sharing an attribute (CelebA: Black_Hair=1 vs Blond_Hair=1; Male=1 vs Male=0).

    ``n_random_groups`` random groups of the split are appended (``group_type`` ``random``) as the
    third class of the paper's SVM experiment. Returns ``[n_types * n_groups + n_random, B]``.
    """
    groups, table = value_groups(
        metadata,
        group_types,
        n_groups,
        group_size,
        seed,
        "attribute",
        split=split,
        exclusive=exclusive,
    )
    if n_random_groups:
        extra = random_groups(
            split_indices(metadata, split),
            n_random_groups,
            group_size,
            seed + 1,
            f"{split} images",
            "groups.attribute.group_size",
            " (or groups.attribute.n_random_groups to 0)",
        )
        groups = np.concatenate([groups, extra])
        table = pd.concat(
            [table, group_table(n_random_groups, "random", "random")], ignore_index=True
        )
        table["group_id"] = np.arange(len(table), dtype=np.int64)
    return groups, table
