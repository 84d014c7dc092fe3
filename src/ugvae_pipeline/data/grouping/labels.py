"""Groups whose members share a metadata value: training plans formed by labels (the weak
supervision of ML-VAE) and evaluation groups per value (class groups, and the conditions
``"<column>=<value>"`` that attribute groups are also built on)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping.common import group_table, split_indices
from ugvae_pipeline.data.grouping.random import sample_groups

log = logging.getLogger(__name__)

COMMON_COLUMNS = ("image_id", "split", "source", "filename")


def label_group_plan(
    metadata: pd.DataFrame, column: str, group_size: int, epochs: int, seed: int
) -> np.ndarray:
    """Groups formed by labels, redrawn every epoch: ``[epochs, n_groups, B]`` of training images,
    the members of each group sharing one value of ``column``. Missing values are left out, and
    so is -1 in the ``label`` column (the sources' mark for an unlabelled image); in any other
    column -1 is a value like any other (a ±1 attribute keeps both classes).

    Each epoch every class's images are shuffled and cut into groups of B (the remainder that
    does not fill a group is left out of that epoch), and the order of the groups is shuffled.
    The weak supervision of ML-VAE; never used for UG-VAE's own (unsupervised) training.
    """
    if column not in metadata.columns:
        raise ValueError(
            f"groups.training.label_column={column!r} is not a metadata column; columns: {list(metadata.columns)}"
        )
    train = split_indices(metadata, "train")
    values = metadata[column].to_numpy()[train]
    labelled = pd.notna(values)
    if column == "label":
        labelled &= values.astype(str) != "-1"
    train, values = train[labelled], values[labelled]
    if not len(train):
        raise ValueError(
            f"groups formed by labels need labelled training images, but {column!r} has no value "
            + (
                "other than -1 (an unlabelled source)"
                if column == "label"
                else "on any training image"
            )
            + ": set groups.training.label_column to a labelled "
            "metadata column (e.g. a CelebA attribute such as Male), or use a model trained without "
            "labels (model.name=ugvae, beta_vae, gmvae or neural_statistician)"
        )
    names, classes = np.unique(values.astype(str), return_inverse=True)
    pools = [train[classes == c] for c in range(classes.max() + 1)]
    per_class = np.array([len(pool) // group_size for pool in pools])
    if per_class.sum() == 0:
        largest = max(len(pool) for pool in pools)
        raise ValueError(
            f"no value of {column!r} has train.group_size={group_size} training images (the largest class "
            f"has {largest}); lower train.group_size to at most {largest}"
        )
    if (per_class == 0).any():
        small = [
            f"{name} ({len(pool)})" for name, pool, n in zip(names, pools, per_class) if n == 0
        ]
        log.warning(
            "groups formed by %r leave out %d value(s) with fewer than train.group_size=%d training "
            "images: %s",
            column,
            len(small),
            group_size,
            ", ".join(small),
        )
    rng = np.random.default_rng(seed)
    plan = []
    for _ in range(epochs):
        groups = np.concatenate(
            [
                rng.permutation(pool)[: n * group_size].reshape(n, group_size)
                for pool, n in zip(pools, per_class)
            ]
        )
        plan.append(groups[rng.permutation(len(groups))])
    return np.stack(plan).astype(np.int64)


def parse_condition(spec: str, metadata: pd.DataFrame) -> tuple[str, object]:
    """``"Black_Hair=1"`` → ``("Black_Hair", True)``: a column and a value of its dtype.

    A bare name (``"Male"``) means ``=1``. Bool columns accept 1/0, true/false, -1 (CelebA's ±1).

    Raises:
        ValueError: an unknown column, listing the valid ones, or a value that does not parse.
    """
    column, _, raw = str(spec).partition("=")
    column, raw = column.strip(), (raw.strip() or "1")
    if column not in metadata.columns or column in COMMON_COLUMNS:
        valid = [name for name in metadata.columns if name not in COMMON_COLUMNS]
        raise ValueError(
            f"group type {spec!r}: unknown attribute {column!r}; valid attributes: {valid}"
        )
    dtype = metadata[column].dtype
    if pd.api.types.is_bool_dtype(dtype):
        truth = {"1": True, "true": True, "0": False, "false": False, "-1": False}
        if raw.lower() not in truth:
            raise ValueError(
                f"group type {spec!r}: {column} is true/false; write {column}=1 or {column}=0"
            )
        return column, truth[raw.lower()]
    if pd.api.types.is_numeric_dtype(dtype):
        try:
            return column, pd.to_numeric(raw)
        except ValueError as err:
            raise ValueError(
                f"group type {spec!r}: {column} is numeric, {raw!r} is not a number"
            ) from err
    return column, raw


def condition_masks(metadata: pd.DataFrame, conditions: list[tuple[str, object]]) -> np.ndarray:
    """``[T, N]`` bool: image n satisfies condition t (missing values never do)."""
    return np.stack(
        [
            (metadata[column] == value).fillna(False).to_numpy(dtype=bool)
            for column, value in conditions
        ]
    )


def value_groups(
    metadata: pd.DataFrame,
    group_types: list[str],
    n_groups: int,
    group_size: int,
    seed: int,
    strategy: str,
    split: str = "test",
    exclusive: bool = False,
) -> tuple[np.ndarray, pd.DataFrame]:
    """``n_groups`` groups per group type, every member satisfying it: ``[T * n_groups, B]``.

    Args:
        group_types: conditions ``"<column>=<value>"`` (see :func:`parse_condition`).
        exclusive: leave out images that satisfy more than one of the group types, so that
            contrast groups (Black_Hair=1 vs Blond_Hair=1) do not overlap.

    Returns:
        The groups, and their table with ``attribute`` and ``value`` columns.

    Raises:
        ValueError: an unknown attribute, or a group type with fewer images than ``group_size``
            (naming every group type's count).
    """
    if not group_types:
        raise ValueError(
            f"groups.{strategy}: list at least one group type, e.g. ['Black_Hair=1', 'Blond_Hair=1']"
        )
    conditions = [parse_condition(spec, metadata) for spec in group_types]
    masks = condition_masks(metadata, conditions) & (metadata["split"] == split).to_numpy()
    if exclusive:
        masks &= masks.sum(axis=0) == 1
    counts = dict(zip(map(str, group_types), masks.sum(axis=1).tolist()))
    smallest = min(counts.values())
    if smallest < group_size:
        fix = (
            f"set groups.{strategy}.group_size (now {group_size}) to at most {smallest}"
            if smallest
            else f"list only group types that have {split} images"
        )
        raise ValueError(
            f"groups.{strategy}: too few {split} images to fill a group of {group_size}: {counts}"
            f"{' (images in several group types left out: exclusive=true)' if exclusive else ''}; "
            f"{fix}, or use more images"
        )
    rng = np.random.default_rng(seed)
    groups = np.concatenate(
        [sample_groups(np.flatnonzero(mask), n_groups, group_size, rng) for mask in masks]
    )
    table = group_table(
        len(groups),
        strategy,
        np.repeat(list(map(str, group_types)), n_groups).tolist(),
        attribute=pd.Series(
            np.repeat([column for column, _ in conditions], n_groups), dtype="string"
        ),
        value=pd.Series(
            np.repeat([str(value) for _, value in conditions], n_groups), dtype="string"
        ),
    )
    return groups, table


def class_groups(
    metadata: pd.DataFrame,
    n_groups: int,
    group_size: int,
    seed: int,
    column: str = "label",
    split: str = "test",
) -> tuple[np.ndarray, pd.DataFrame]:
    """``n_groups`` groups of ``split`` images per class of ``column`` (labels -1 and missing left out)."""
    if column not in metadata.columns:
        raise ValueError(
            f"groups.class.column={column!r} is not a metadata column; columns: {list(metadata.columns)}"
        )
    in_split = metadata.loc[metadata["split"] == split, column].dropna()
    classes = sorted(value for value in in_split.unique() if str(value) != "-1")
    if not classes:
        raise ValueError(
            f"class groups need labelled images: {split} {column!r} has no value other than -1"
        )
    return value_groups(
        metadata,
        [f"{column}={value}" for value in classes],
        n_groups,
        group_size,
        seed,
        "class",
        split=split,
    )
