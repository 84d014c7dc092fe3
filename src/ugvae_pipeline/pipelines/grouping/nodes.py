"""Nodes of the grouping pipeline: labels never enter training groups; groups are index arrays."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping import (
    attribute_groups,
    class_groups,
    domain_group_plan,
    domain_groups,
    group_table,
    random_group_plan,
    random_groups,
    split_indices,
)

log = logging.getLogger(__name__)


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


def _logged(groups: np.ndarray, table: pd.DataFrame, what: str) -> tuple[np.ndarray, pd.DataFrame]:
    log.info("built %d %s groups of %d: %s", len(groups), what, groups.shape[1], table["group_type"].value_counts().to_dict())
    return groups, table


def build_class_groups(image_metadata: pd.DataFrame, class_params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Held-out groups ``[n_classes * n_groups, B]`` whose members share a label, and their table."""
    return _logged(*class_groups(image_metadata, **class_params), "class")


def build_attribute_groups(image_metadata: pd.DataFrame, attribute_params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Held-out groups whose members share an attribute value (``groups.attribute``), and their table."""
    return _logged(*attribute_groups(image_metadata, **attribute_params), "attribute")


def build_domain_groups(image_metadata: pd.DataFrame, domain_params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Held-out single-domain and mixed groups ``[3 * n_groups, B]``, and their table."""
    return _logged(*domain_groups(image_metadata, **domain_params), "domain")


def build_domain_training_groups(image_metadata: pd.DataFrame, domain_params: dict, train_params: dict) -> np.ndarray:
    """Mixed-domain training groups ``[E, n, B]`` (each member from domain A with probability p)."""
    return domain_group_plan(
        image_metadata,
        group_size=train_params["group_size"],
        epochs=train_params["epochs"],
        seed=train_params["seed"],
        p=domain_params.get("p", 0.5),
        domains=domain_params.get("domains"),
    )
