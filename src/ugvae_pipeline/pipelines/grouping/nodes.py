"""Nodes that build groups: labels never enter training groups; groups are index arrays.

``build_training_groups`` and ``build_heldout_groups`` form the ``grouping`` stage (what
``training`` reads); ``build_evaluation_groups`` opens the ``extract`` stage (what ``extract``
and ``evaluate`` read), so ``kedro run --pipelines=train`` neither builds nor needs them."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping import (
    cluster_group_plan,
    domain_group_plan,
    group_table,
    heldout_groups,
    label_group_plan,
    pixel_clusters,
    random_group_plan,
    split_indices,
)
from ugvae_pipeline.data.grouping.strategies import evaluation_groups
from ugvae_pipeline.data.grouping.validation import validation_groups
from ugvae_pipeline.models.registry import configured_name
from ugvae_pipeline.runs import training_groups
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.monitor import check_validation_groups
from ugvae_pipeline.training.selection import VALIDATION

log = logging.getLogger(__name__)


def build_training_groups(
    images: np.ndarray,
    image_metadata: pd.DataFrame,
    train_params: dict,
    groups_params: dict,
    model_params: dict,
) -> np.ndarray:
    """Training groups ``[E, n, B]`` of ``train.group_size`` training images, redrawn each epoch.

    ``groups.training.strategy``: ``random`` (i.i.d. random groups, the paper's unsupervised
    setting), ``mixed_domains`` (each member from domain A with probability
    ``groups.domain.p``; needs ``data.source=mixed``), ``clusters`` (compositions drawn from
    Dirichlet(``groups.clusters.alpha``) over k-means clusters of the training pixels: structure
    formed without labels; the only strategy that reads ``images``) or ``labels`` (members share
    a value of ``groups.training.label_column``). The weakly supervised ML-VAE
    (``model.name=mlvae``) always trains on groups formed by labels, its intended use.
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
    if strategy == "clusters":
        block = groups_params["clusters"]
        train = split_indices(image_metadata, "train")
        clusters = pixel_clusters(
            images[train], block["n_clusters"], block["pca_dims"], block["seed"]
        )
        log.info(
            "training groups from %d pixel clusters (sizes %s), compositions ~ Dirichlet(%g)",
            block["n_clusters"],
            np.bincount(clusters).tolist(),
            block["alpha"],
        )
        return cluster_group_plan(train, clusters, size, epochs, block["alpha"], seed)
    domain = groups_params["domain"]  # mixed_domains
    return domain_group_plan(
        image_metadata, size, epochs, seed, p=domain["p"], domains=domain.get("domains")
    )


def build_heldout_groups(
    image_metadata: pd.DataFrame, heldout_params: dict, train_params: dict
) -> tuple[np.ndarray, pd.DataFrame]:
    """Random groups ``[n_groups, B]`` of validation images (never trained on, never reported as
    a test score): the held-out loss every epoch. B is ``groups.heldout.group_size``, or with
    ``null`` (the default) ``train.group_size``, at most the validation images. Returns the
    groups and their table."""
    groups = heldout_groups(
        image_metadata,
        n_groups=heldout_params["n_groups"],
        group_size=heldout_params.get("group_size"),
        seed=heldout_params["seed"],
        train_group_size=train_params["group_size"],
    )
    return groups, group_table(len(groups), "random", "random")


def build_evaluation_groups(
    image_metadata: pd.DataFrame, groups_params: dict, data_params: dict
) -> tuple[np.ndarray, pd.DataFrame]:
    """Structured evaluation groups ``[n, B]`` plus random ones, and their table: what the
    ``extract`` and ``evaluate`` pipelines encode and score (``training`` never reads them).

    All come from the images of ``groups.evaluation.split``: ``test`` (every reported score) or
    ``validation`` (choosing model options; use other seeds there too).
    ``groups.evaluation.strategy`` picks the structured groups (their parameters are the
    ``groups.<strategy>`` block; ``auto``: the groups ``data.source`` can build);
    ``groups.evaluation.random`` appends random groups (``group_type`` ``random``), the
    unstructured reference. The table keeps per group its strategy, type and, for labelled
    sources, the labels of its members (evaluation only).
    """
    groups, table = evaluation_groups(image_metadata, groups_params, data_params)
    log.info(
        "built %d evaluation groups of %d %s images: %s",
        len(groups),
        groups.shape[1],
        groups_params["evaluation"].get("split", "test"),
        table["group_type"].value_counts().to_dict(),
    )
    return groups, table


def build_validation_groups(
    image_metadata: pd.DataFrame, groups_params: dict, data_params: dict, train_params: dict
) -> tuple[np.ndarray, pd.DataFrame]:
    """Structured groups ``[n, B]`` of validation images, and their table: what the trainer
    scores the group code on every ``train.monitor_every`` epochs and what
    ``train.select_epoch=validation_svm_linear`` chooses the epoch on (never test images).

    The strategy of ``groups.evaluation.strategy`` builds ``train.monitor_groups`` groups per
    group type with ``train.monitor_seed`` (``data/grouping/validation.py``). Where they cannot
    be built or scored (too few validation images, fewer than two group types), the scores are
    off with a logged reason and the arrays are empty; a run that chooses its epoch on them is
    refused instead, before training. Empty too when nothing reads them (the monitor off).
    """
    config = TrainConfig.from_dict(train_params)
    needed = config.select_epoch == VALIDATION
    if not (config.monitor_on or needed):
        return _no_validation_groups()
    try:
        groups, table = validation_groups(
            image_metadata, groups_params, data_params, config.monitor_groups, config.monitor_seed
        )
        reason = check_validation_groups(groups, table["group_type"].to_numpy())
    except ValueError as err:
        reason = str(err)
    if reason is not None:
        if needed:
            raise ValueError(
                f"train.select_epoch={VALIDATION} chooses the epoch on validation groups, but "
                f"they cannot be built from these images: {reason}. Set train.select_epoch to "
                "last or heldout_loss, or give the validation split more images"
            )
        log.warning(
            "validation scores of the group code are off (train.monitor_every=%d): no "
            "validation groups: %s",
            config.monitor_every,
            reason,
        )
        return _no_validation_groups()
    log.info(
        "built %d validation groups of %d validation images: %s",
        len(groups),
        groups.shape[1],
        table["group_type"].value_counts().to_dict(),
    )
    return groups, table


def _no_validation_groups() -> tuple[np.ndarray, pd.DataFrame]:
    return np.empty((0, 0), dtype=np.int64), pd.DataFrame(
        {"group_id": pd.Series([], dtype="int64"), "group_type": pd.Series([], dtype="string")}
    )
