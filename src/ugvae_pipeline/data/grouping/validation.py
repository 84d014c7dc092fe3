"""Validation groups: the evaluation's structured groups, built from validation images.

The trainer scores the group code on them every few epochs (``training/monitor.py``) and may
choose the epoch it keeps on them (``train.select_epoch``); the test images, which every
reported score uses, never serve to choose anything. They are built by the strategy of
``groups.evaluation.strategy`` (resolved for ``data.source``: digit series, attribute, domain,
folder or class groups) with that strategy's parameter block, except for the number of groups
per group type (``train.monitor_groups``) and the seed (``train.monitor_seed``); random groups
are left out (the scores compare structured group types only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping.strategies import EVALUATION_STRATEGIES, evaluation_strategy

# the key of each strategy's block that sets the number of groups per group type
_COUNT_KEY = {"series": "groups_per_series"}


def validation_groups(
    metadata: pd.DataFrame,
    groups_params: dict,
    data_params: dict,
    groups_per_type: int,
    seed: int,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Structured groups ``[n, B]`` of validation images and their table (``group_id``,
    ``strategy``, ``group_type``), ``groups_per_type`` per group type, drawn with ``seed``.

    Raises:
        ValueError: the strategy cannot build them from the validation images (e.g. a split
            smaller than ``groups.<strategy>.group_size``), with the builder's message.
    """
    strategy = evaluation_strategy(groups_params, data_params)
    params = dict(groups_params[strategy])
    params[_COUNT_KEY.get(strategy, "n_groups")] = groups_per_type
    params["seed"] = seed
    if "n_random_groups" in params:
        params["n_random_groups"] = 0
    groups, table = EVALUATION_STRATEGIES[strategy](metadata, params, "validation")
    structured = (table["group_type"] != "random").to_numpy()
    groups = np.asarray(groups, dtype=np.int64)[structured]
    table = table.loc[structured, ["strategy", "group_type"]].reset_index(drop=True)
    table.insert(0, "group_id", np.arange(len(table), dtype=np.int64))
    return groups, table
