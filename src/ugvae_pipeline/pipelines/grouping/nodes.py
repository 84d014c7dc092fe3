"""Nodes of the grouping pipeline: labels never enter training groups; groups are index arrays."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping import (
    domain_group_plan,
    group_table,
    label_group_plan,
    random_group_plan,
    random_groups,
    split_indices,
)
from ugvae_pipeline.data.grouping.strategies import EVALUATION_STRATEGIES, evaluation_strategy
from ugvae_pipeline.models.registry import configured_name
from ugvae_pipeline.runs import training_groups

log = logging.getLogger(__name__)


def build_training_groups(
    image_metadata: pd.DataFrame, train_params: dict, groups_params: dict, model_params: dict
) -> np.ndarray:
    """Training groups ``[E, n, B]`` of ``train.group_size`` training images, redrawn each epoch.

    ``groups.training.strategy``: ``random`` (i.i.d. random groups, the paper's unsupervised
    setting), ``mixed_domains`` (each member from domain A with probability
    ``groups.domain.p``; needs ``data.source=mixed``) or ``labels`` (members share a value of
    ``groups.training.label_column``). The weakly supervised ML-VAE (``model.name=mlvae``)
    always trains on groups formed by labels, its intended use.
    """
    configured = groups_params["training"]["strategy"]
    strategy, label_column = training_groups(model_params, groups_params)
    size, epochs, seed = train_params["group_size"], train_params["epochs"], train_params["seed"]
    if strategy != configured:
        log.info(
            "model.name=%s trains on groups formed by labels (%r), not groups.training.strategy=%s",
            configured_name(model_params),
            label_column,
            configured,
        )
    if strategy == "labels":
        return label_group_plan(image_metadata, label_column, size, epochs, seed)
    if strategy == "random":
        return random_group_plan(split_indices(image_metadata, "train"), size, epochs, seed)
    domain = groups_params["domain"]  # mixed_domains
    return domain_group_plan(
        image_metadata, size, epochs, seed, p=domain["p"], domains=domain.get("domains")
    )


def build_heldout_groups(
    image_metadata: pd.DataFrame, heldout_params: dict
) -> tuple[np.ndarray, pd.DataFrame]:
    """Random groups ``[n_groups, B]`` of validation images (never trained on, never reported as
    a test score): the held-out loss every epoch. Returns the groups and their table."""
    groups = random_groups(
        split_indices(image_metadata, "validation"),
        n_groups=heldout_params["n_groups"],
        group_size=heldout_params["group_size"],
        seed=heldout_params["seed"],
    )
    return groups, group_table(len(groups), "random", "random")


def build_evaluation_groups(
    image_metadata: pd.DataFrame, groups_params: dict, data_params: dict
) -> tuple[np.ndarray, pd.DataFrame]:
    """Structured evaluation groups ``[n, B]`` plus random ones, and their table.

    All come from the images of ``groups.evaluation.split``: ``test`` (every reported score) or
    ``validation`` (choosing model options; use other seeds there too).
    ``groups.evaluation.strategy`` picks the structured groups (their parameters are the
    ``groups.<strategy>`` block; ``auto``: the groups ``data.source`` can build); ``groups.evaluation.random`` appends random groups
    (``group_type`` ``random``), the unstructured reference. The table keeps per group its
    strategy, type and, for labelled sources, the labels of its members (evaluation only).
    """
    evaluation = groups_params["evaluation"]
    strategy, split = (
        evaluation_strategy(groups_params, data_params),
        evaluation.get("split", "test"),
    )
    groups, table = EVALUATION_STRATEGIES[strategy](image_metadata, groups_params[strategy], split)
    n_random = (evaluation.get("random") or {}).get("n_groups") or 0
    if n_random:
        extra = random_groups(
            split_indices(image_metadata, split),
            n_random,
            groups.shape[1],
            evaluation["random"]["seed"],
        )
        groups = np.concatenate([groups, extra])
        table = pd.concat([table, group_table(n_random, "random", "random")], ignore_index=True)
    table["group_id"] = np.arange(len(table), dtype=np.int64)
    labels = image_metadata["label"].to_numpy()
    table["member_labels"] = list(labels[groups])
    log.info(
        "built %d evaluation groups of %d %s images: %s",
        len(groups),
        groups.shape[1],
        split,
        table["group_type"].value_counts().to_dict(),
    )
    return groups, table
