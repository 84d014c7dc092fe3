"""Scores of every representation of the same evaluation groups, in one table.

The global code is scored beside honest baselines computed on the same groups: the mean of
the local codes of each group, the mean image of each group and, for labelled sources, the
oracle histogram of the true labels (the ceiling). A reader sees at once whether the global
latent adds anything over pooling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ugvae_pipeline.evaluation import baselines
from ugvae_pipeline.evaluation.metrics import group_structure_scores
from ugvae_pipeline.evaluation.tables import code_matrix

RANDOM = "random"


def representations(
    global_codes: pd.DataFrame, local_codes: pd.DataFrame, images: np.ndarray, groups: np.ndarray,
    labels: np.ndarray,
) -> dict[str, tuple[str, np.ndarray]]:
    """``name → (kind, codes [n_groups, D])`` for the global code and each baseline."""
    order = global_codes["group_id"].to_numpy()
    local = local_codes.sort_values(["group_id", "position"])
    mean_local = local.groupby("group_id")[[c for c in local if c.startswith("local_mean_")]].mean()
    reps = {
        "global_code": ("model", code_matrix(global_codes, "global_mean")),
        "mean_local_code": ("baseline", mean_local.loc[order].to_numpy(np.float64)),
        "mean_image": ("baseline", baselines.mean_image(images, groups)),
    }
    if (labels >= 0).all():
        reps["oracle_label_histogram"] = (
            "oracle", baselines.label_histogram(labels, groups, int(labels.max()) + 1)
        )
    return reps


def score_table(reps: dict[str, tuple[str, np.ndarray]], group_types: np.ndarray, seed: int) -> pd.DataFrame:
    """One row per representation: clustering and SVM scores of the structured group types
    (random groups, if any, join only the ``*_with_random`` SVMs)."""
    structured = group_types != RANDOM
    if len(np.unique(group_types[structured])) < 2:
        raise ValueError(
            f"need at least two structured group types to score, got {sorted(set(group_types))}; "
            "configure groups.evaluation"
        )
    rows = []
    for name, (kind, codes) in reps.items():
        random_codes = codes[~structured] if (~structured).any() else None
        scores = group_structure_scores(codes[structured], group_types[structured], seed, random_codes)
        rows.append({"representation": name, "kind": kind, **scores})
    return pd.DataFrame(rows)
