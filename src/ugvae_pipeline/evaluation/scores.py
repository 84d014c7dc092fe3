"""Scores of every representation of the same evaluation groups, in one table.

The global code is scored beside honest baselines computed on the same groups: the mean of
the local codes of each group, for mixture models the mean of the images' mixture
responsibilities π, the mean image of each group and, for labelled sources, the oracle
histogram of the true labels (the ceiling). A reader sees at once whether the global
latent adds anything over pooling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ugvae_pipeline.evaluation import alignment, baselines
from ugvae_pipeline.evaluation.code_tables import code_matrix
from ugvae_pipeline.evaluation.metrics import group_structure_scores

RANDOM = "random"


MIXTURE_PROB_PREFIX = "mixture_prob_"  # local_codes columns of q(d | z), one per component


def has_mixture_columns(local_codes: pd.DataFrame) -> bool:
    """Whether a local-code table holds mixture responsibilities: models without mixture
    components write a single ``mixture_prob_00`` column of ones, mixture models one per component."""
    return sum(c.startswith(MIXTURE_PROB_PREFIX) for c in local_codes.columns) > 1


def representations(
    global_codes: pd.DataFrame,
    local_codes: pd.DataFrame,
    images: np.ndarray,
    groups: np.ndarray,
    labels: np.ndarray,
    mixture: bool | None = None,
) -> dict[str, tuple[str, np.ndarray]]:
    """``name → (kind, codes [n_groups, D])`` for the global code and each baseline.

    ``mean_mixture_probs`` (mixture models only: ``mixture`` true, or by default when the
    table has more than one mixture-probability column) is the group mean of the images'
    responsibilities π_i = q(d_i | z_i), the baseline matching UG-VAE's global factor input.
    """
    order = global_codes["group_id"].to_numpy()
    local = local_codes.sort_values(["group_id", "position"])
    mean_local = local.groupby("group_id")[[c for c in local if c.startswith("local_mean_")]].mean()
    reps = {
        "global_code": ("model", code_matrix(global_codes, "global_mean")),
        "mean_local_code": ("baseline", mean_local.loc[order].to_numpy(np.float64)),
    }
    if mixture is None:
        mixture = has_mixture_columns(local_codes)
    if mixture:
        prob_columns = [c for c in local if c.startswith(MIXTURE_PROB_PREFIX)]
        mean_probs = local.groupby("group_id")[prob_columns].mean()
        reps["mean_mixture_probs"] = ("baseline", mean_probs.loc[order].to_numpy(np.float64))
    reps["mean_image"] = ("baseline", baselines.mean_image(images, groups))
    if (labels >= 0).all():
        reps["oracle_label_histogram"] = (
            "oracle",
            baselines.label_histogram(labels, groups, int(labels.max()) + 1),
        )
    return reps


def score_table(
    reps: dict[str, tuple[str, np.ndarray]], group_types: np.ndarray, seed: int
) -> pd.DataFrame:
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
        scores = group_structure_scores(
            codes[structured], group_types[structured], seed, random_codes
        )
        rows.append({"representation": name, "kind": kind, **scores})
    return pd.DataFrame(rows)


def domain_alignment_scores(
    global_codes: pd.DataFrame, local_codes: pd.DataFrame, image_metadata: pd.DataFrame, seed: int
) -> dict[str, float]:
    """Paper §4.2 on single-domain evaluation groups of two databases A and B.

    ``domain_accuracy``: linear-SVM accuracy of the database from μ_β (the global space should
    separate them). ``knn_a_to_b`` / ``knn_b_to_a``: a 5-NN label classifier fitted on one
    database's local codes μ_z and scored on the other's (the local space should be shared);
    ``knn_within_a`` / ``knn_within_b``: the same within one database (fit on half, score on the
    other half), the reference. Empty when the groups do not span two databases.
    """
    if "domain" not in image_metadata.columns:
        return {}
    domains = [
        d
        for d in pd.unique(image_metadata["domain"].dropna())
        if d in set(global_codes["group_type"])
    ]
    if len(domains) != 2:
        return {}
    a, b = domains
    single = global_codes[global_codes["group_type"].isin(domains)]
    scores = {
        "domain_accuracy": alignment.domain_accuracy(
            code_matrix(single, "global_mean"), single["group_type"].to_numpy(str), seed
        )
    }
    images = local_codes[local_codes["group_type"].isin(domains)].drop_duplicates("image_id")
    by_domain = {d: images[images["group_type"] == d] for d in domains}
    codes = {d: code_matrix(t, "local_mean") for d, t in by_domain.items()}
    labels = {d: t["label"].to_numpy() for d, t in by_domain.items()}
    scores["knn_a_to_b"] = alignment.cross_domain_knn_accuracy(
        codes[a], labels[a], codes[b], labels[b]
    )
    scores["knn_b_to_a"] = alignment.cross_domain_knn_accuracy(
        codes[b], labels[b], codes[a], labels[a]
    )
    for key, d in (("knn_within_a", a), ("knn_within_b", b)):
        half = len(codes[d]) // 2
        scores[key] = alignment.cross_domain_knn_accuracy(
            codes[d][:half], labels[d][:half], codes[d][half:], labels[d][half:]
        )
    return scores
