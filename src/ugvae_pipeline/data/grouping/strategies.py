"""The group-forming strategies by name, and the group types each one names in advance.

``groups.training.strategy`` is one of :data:`TRAINING_STRATEGIES`; ``groups.evaluation.strategy``
one of :data:`EVALUATION_STRATEGIES`, each building groups of one split's images (``test`` for
reported scores, ``validation`` for choosing options) from its own parameter block
(``groups.<strategy>``). The parameter validation hook checks both names, and the
interpolation's group types, before any node runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping.attributes import attribute_groups
from ugvae_pipeline.data.grouping.common import group_table, split_indices
from ugvae_pipeline.data.grouping.domains import domain_groups
from ugvae_pipeline.data.grouping.labels import class_groups, value_groups
from ugvae_pipeline.data.grouping.random import random_groups
from ugvae_pipeline.data.grouping.series import series_groups

log = logging.getLogger(__name__)

TRAINING_STRATEGIES = ("random", "mixed_domains", "labels", "clusters")

GroupBuilder = Callable[[pd.DataFrame, dict, str], "tuple[np.ndarray, pd.DataFrame]"]


def _series(metadata: pd.DataFrame, params: dict, split: str) -> tuple[np.ndarray, pd.DataFrame]:
    groups, table, _ = series_groups(
        metadata["label"].to_numpy(),
        split_indices(metadata, split),
        params["groups_per_series"],
        params["group_size"],
        tuple(params["names"]),
        digits=params.get("digits", "first_256"),
        seed=params["seed"],
        draw=params.get("draw", "with_replacement"),
    )
    return groups, table


def _keyword(function: Callable[..., Any]) -> GroupBuilder:
    return lambda metadata, params, split: function(metadata, split=split, **params)


def _folders(metadata: pd.DataFrame, params: dict, split: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Groups whose members share a top-level sub-folder (``folder`` column) of an image folder;
    none (only the random reference groups) when fewer than two sub-folders can fill a group."""
    if "folder" not in metadata.columns:
        raise ValueError(
            "groups.evaluation.strategy=folder needs a 'folder' metadata column: an image_folder "
            f"source (alone or in data.mixed.sources); columns: {list(metadata.columns)}"
        )
    size = params["group_size"]
    in_split = metadata.loc[metadata["split"] == split, "folder"].dropna()
    counts = in_split[in_split != ""].value_counts()
    folders = sorted(counts[counts >= size].index)
    if len(folders) < 2:
        log.warning(
            "evaluation groups: %d sub-folder(s) with %d or more %s images (%s): no folder groups, "
            "only random ones; put each kind of image in its own sub-folder to score the global code",
            len(folders),
            size,
            split,
            dict(counts),
        )
        return np.empty((0, size), dtype=np.int64), group_table(0, "folder", [])
    types = [f"folder={name}" for name in folders]
    return value_groups(
        metadata, types, params["n_groups"], size, params["seed"], "folder", split=split
    )


EVALUATION_STRATEGIES: dict[str, GroupBuilder] = {
    "series": _series,  # MNIST digit series (docs/model.md §7)
    "class": _keyword(class_groups),  # members share a label
    "attribute": _keyword(attribute_groups),  # members share an attribute value (CelebA)
    "domain": _keyword(domain_groups),  # single-domain groups of A and of B, and mixed groups
    "folder": _folders,  # image folders: members share a sub-folder
}

# what groups.evaluation.strategy=auto builds for each data.source, and the sources each
# strategy can serve (attribute and class groups take any metadata column)
DIGIT_SOURCES = ("mnist_embedded", "mnist", "uci_digits")
AUTO_STRATEGY = {
    **dict.fromkeys(DIGIT_SOURCES, "series"),
    "celeba": "attribute",
    "mixed": "domain",
    "image_folder": "folder",
}
STRATEGY_SOURCES = {
    "series": DIGIT_SOURCES,
    "domain": ("mixed",),
    "folder": ("image_folder", "mixed"),
}


def evaluation_strategy(groups_params: dict, data_params: dict) -> str:
    """``groups.evaluation.strategy``, with ``auto`` resolved for ``data.source`` (digit series for
    digit sources, attribute groups for CelebA, domains for two databases, folders for an image
    folder). A strategy the source cannot build is an error naming both parameters and the
    strategies that source can use."""
    strategy = groups_params["evaluation"]["strategy"]
    source = data_params.get("source")
    if strategy == "auto":
        return AUTO_STRATEGY[source]
    if strategy in STRATEGY_SOURCES and source not in STRATEGY_SOURCES[strategy]:
        valid = ["auto"] + [
            name
            for name in sorted(EVALUATION_STRATEGIES)
            if source in STRATEGY_SOURCES.get(name, (source,))
        ]
        raise ValueError(
            f"groups.evaluation.strategy={strategy} cannot be built from data.source={source} "
            f"(it needs one of {list(STRATEGY_SOURCES[strategy])}); choose one of {valid}"
        )
    return strategy


def evaluation_groups(
    metadata: pd.DataFrame, groups_params: dict, data_params: dict
) -> tuple[np.ndarray, pd.DataFrame]:
    """Structured evaluation groups ``[n, B]`` plus random ones, and their table.

    All come from the images of ``groups.evaluation.split``. ``groups.evaluation.strategy``
    picks the structured groups (resolved by :func:`evaluation_strategy`; their parameters are
    the ``groups.<strategy>`` block, B its ``group_size``); ``groups.evaluation.random`` appends
    random groups of the same B (``group_type`` ``random``). The table keeps per group its
    strategy, type and the labels of its members (``member_labels``, evaluation only).
    A split too small for B is an error naming ``groups.<strategy>.group_size``.
    """
    evaluation = groups_params["evaluation"]
    strategy, split = (
        evaluation_strategy(groups_params, data_params),
        evaluation.get("split", "test"),
    )
    groups, table = EVALUATION_STRATEGIES[strategy](metadata, groups_params[strategy], split)
    n_random = (evaluation.get("random") or {}).get("n_groups") or 0
    if n_random:
        extra = random_groups(
            split_indices(metadata, split),
            n_random,
            groups.shape[1],
            evaluation["random"]["seed"],
            f"{split} images (groups.evaluation.random draws random groups of the size of the "
            f"{strategy} groups)",
            f"groups.{strategy}.group_size",
            ", set groups.evaluation.random.n_groups=0",
        )
        groups = np.concatenate([groups, extra])
        table = pd.concat([table, group_table(n_random, "random", "random")], ignore_index=True)
    table["group_id"] = np.arange(len(table), dtype=np.int64)
    labels = metadata["label"].to_numpy()
    table["member_labels"] = list(labels[groups])
    return groups, table


def _names(block: dict, name: str) -> list[str]:
    values = block.get(name)
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{name} must be a non-empty list, got {values!r}")
    return [str(value) for value in values]


def evaluation_group_types(groups_params: dict, strategy: str) -> list[str] | None:
    """The ``group_type`` values the evaluation groups of ``strategy`` (resolved) will have, where
    the parameters name them (``None`` where they depend on the data: class and folder groups,
    domains in ingestion order)."""
    block = groups_params.get(strategy) or {}
    try:
        if strategy == "series":
            types = _names(block, "names")
        elif strategy == "attribute":
            types = _names(block, "group_types")
        elif strategy == "domain" and block.get("domains"):
            types = [*_names(block, "domains"), "mixed"]
        else:
            return None
    except ValueError as err:
        raise ValueError(f"groups.{strategy}.{err}") from None
    return types + (["random"] if has_random_groups(groups_params, strategy) else [])


def has_random_groups(groups_params: dict, strategy: str) -> bool:
    """Whether the evaluation groups include random ones (``group_type`` ``random``)."""
    appended = (groups_params["evaluation"].get("random") or {}).get("n_groups")
    own = strategy == "attribute" and (groups_params.get("attribute") or {}).get("n_random_groups")
    return bool(appended or own)


def check_interpolation_types(evaluate_params: dict, groups_params: dict, strategy: str) -> None:
    """``evaluate.interpolation.from_type`` / ``to_type``, where set, are group types the
    evaluation groups of ``strategy`` (resolved) will have, so a full run does not train for
    nothing and fail at the evaluation. Unset (null), the figure takes the first two types."""
    interpolation = evaluate_params.get("interpolation") or {}
    types = evaluation_group_types(groups_params, strategy)
    column = (groups_params.get("class") or {}).get("column", "label")
    for key in ("from_type", "to_type"):
        value = interpolation.get(key)
        if value is None:
            continue
        if types is not None and value not in types:
            raise ValueError(
                f"evaluate.interpolation.{key}={value!r} is not a group type of "
                f"groups.evaluation.strategy={strategy}; choose one of {types}"
            )
        if strategy != "class":
            continue
        if value == "random" and not has_random_groups(groups_params, strategy):
            raise ValueError(
                f"evaluate.interpolation.{key}='random' but there are no random evaluation groups "
                "(groups.evaluation.random.n_groups is 0)"
            )
        if value != "random" and not str(value).startswith(f"{column}="):
            raise ValueError(
                f"evaluate.interpolation.{key}={value!r} is not a class group type: class groups are "
                f"named '{column}=<value>' (groups.class.column={column}), e.g. {column}=0"
            )
