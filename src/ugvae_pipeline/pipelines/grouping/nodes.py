"""Nodes of the grouping pipeline: labels never enter; groups are index arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping import group_table, random_group_plan, random_groups, split_indices


def build_training_groups(image_metadata: pd.DataFrame, train_params: dict) -> np.ndarray:
    """Random groups of ``train.group_size`` training images, redrawn each epoch: ``[E, n, B]``."""
    return random_group_plan(
        split_indices(image_metadata, "train"),
        group_size=train_params["group_size"],
        epochs=train_params["epochs"],
        seed=train_params["seed"],
    )


def build_heldout_groups(image_metadata: pd.DataFrame, heldout_params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Random groups ``[n_groups, B]`` of held-out images (never trained on), and their table."""
    groups = random_groups(
        split_indices(image_metadata, "heldout"),
        n_groups=heldout_params["n_groups"],
        group_size=heldout_params["group_size"],
        seed=heldout_params["seed"],
    )
    return groups, group_table(len(groups), "random", "random")
