"""The group-forming strategies by name, and the group types each one names in advance.

``groups.training.strategy`` is one of :data:`TRAINING_STRATEGIES`; ``groups.evaluation.strategy``
one of :data:`EVALUATION_STRATEGIES`, each building groups of one split's images (``test`` for
reported scores, ``validation`` for choosing options) from its own parameter block
(``groups.<strategy>``). The parameter validation hook checks both names, and the
interpolation's group types, before any node runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping.attributes import attribute_groups
from ugvae_pipeline.data.grouping.common import split_indices
from ugvae_pipeline.data.grouping.domains import domain_groups
from ugvae_pipeline.data.grouping.labels import class_groups
from ugvae_pipeline.data.grouping.series import series_groups

TRAINING_STRATEGIES = ("random", "mixed_domains", "labels")

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
    )
    return groups, table


def _keyword(function: Callable[..., Any]) -> GroupBuilder:
    return lambda metadata, params, split: function(metadata, split=split, **params)


EVALUATION_STRATEGIES: dict[str, GroupBuilder] = {
    "series": _series,  # MNIST digit series (docs/model.md §7)
    "class": _keyword(class_groups),  # members share a label
    "attribute": _keyword(attribute_groups),  # members share an attribute value (CelebA)
    "domain": _keyword(domain_groups),  # single-domain groups of A and of B, and mixed groups
}


def _names(block: dict, name: str) -> list[str]:
    values = block.get(name)
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{name} must be a non-empty list, got {values!r}")
    return [str(value) for value in values]


def evaluation_group_types(groups_params: dict) -> list[str] | None:
    """The ``group_type`` values the evaluation groups will have, where the parameters name them
    (``None`` where they depend on the data: class groups, domains in ingestion order)."""
    evaluation = groups_params["evaluation"]
    strategy = evaluation["strategy"]
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
    return types + (["random"] if has_random_groups(groups_params) else [])


def has_random_groups(groups_params: dict) -> bool:
    """Whether the evaluation groups include random ones (``group_type`` ``random``)."""
    strategy = groups_params["evaluation"]["strategy"]
    appended = (groups_params["evaluation"].get("random") or {}).get("n_groups")
    own = strategy == "attribute" and (groups_params.get("attribute") or {}).get("n_random_groups")
    return bool(appended or own)


def check_interpolation_types(evaluate_params: dict, groups_params: dict) -> None:
    """``evaluate.interpolation.from_type`` / ``to_type`` are group types the evaluation groups
    will have, so a full run does not train for nothing and fail at the evaluation."""
    interpolation = evaluate_params.get("interpolation") or {}
    strategy = groups_params["evaluation"]["strategy"]
    types = evaluation_group_types(groups_params)
    column = (groups_params.get("class") or {}).get("column", "label")
    for key in ("from_type", "to_type"):
        value = interpolation.get(key)
        if types is not None and value not in types:
            raise ValueError(
                f"evaluate.interpolation.{key}={value!r} is not a group type of "
                f"groups.evaluation.strategy={strategy}; choose one of {types}"
            )
        if strategy != "class":
            continue
        if value == "random" and not has_random_groups(groups_params):
            raise ValueError(
                f"evaluate.interpolation.{key}='random' but there are no random evaluation groups "
                "(groups.evaluation.random.n_groups is 0)"
            )
        if value != "random" and not str(value).startswith(f"{column}="):
            raise ValueError(
                f"evaluate.interpolation.{key}={value!r} is not a class group type: class groups are "
                f"named '{column}=<value>' (groups.class.column={column}), e.g. {column}=0"
            )
