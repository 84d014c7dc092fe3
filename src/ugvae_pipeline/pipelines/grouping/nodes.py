"""Nodes of the grouping pipeline: labels never enter; groups are index arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping import group_table, random_group_plan, random_groups, split_indices
from ugvae_pipeline.data.series import series_groups


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


def build_evaluation_groups(
    image_metadata: pd.DataFrame, evaluation_params: dict
) -> tuple[np.ndarray, pd.DataFrame]:
    """Structured and random evaluation groups ``[n, B]`` from held-out images, and their table.

    Structured groups are digit series (SPEC §6) when ``series.names`` is non-empty; random
    groups (``group_type`` ``random``) are the unstructured reference. The table keeps, per
    group, its strategy, type and the labels of its members (for evaluation only).
    """
    heldout = split_indices(image_metadata, "heldout")
    labels = image_metadata["label"].to_numpy()
    size = evaluation_params["group_size"]
    parts, tables = [], []
    series = evaluation_params.get("series") or {}
    if series.get("names"):
        groups, table, _ = series_groups(
            labels, heldout, series["groups_per_series"], size, tuple(series["names"]),
            n_numbers=series.get("n_numbers", 256), seed=series["seed"],
        )
        parts.append(groups)
        tables.append(table.drop(columns="group_id"))
    rand = evaluation_params.get("random") or {}
    if rand.get("n_groups"):
        groups = random_groups(heldout, rand["n_groups"], size, seed=rand["seed"])
        parts.append(groups)
        tables.append(group_table(len(groups), "random", "random").drop(columns="group_id"))
    if not parts:
        raise ValueError(
            "groups.evaluation builds no groups: set groups.evaluation.series.names and/or "
            "groups.evaluation.random.n_groups"
        )
    groups = np.concatenate(parts)
    table = pd.concat(tables, ignore_index=True)
    table.insert(0, "group_id", np.arange(len(table), dtype=np.int64))
    table["member_labels"] = list(labels[groups])
    return groups, table
