"""The fixed MNIST-series evaluation protocol (issue 4). Fixed before any result was seen.

- Evaluation groups: 50 groups per series (even, odd, fibonacci, primes), 200 in all, of 128
  images, drawn from *held-out* images only with ``SERIES_SEED``; 50 random held-out groups
  with ``RANDOM_SEED`` for the with-random scores and the GMM curve.
- Codes: μ_β (``model.encode``, posterior means); baselines on the same groups: mean local
  code μ_z per group, mean image per group, oracle histogram of the true digit labels.
- Scores (``metrics.group_structure_scores``, seed ``METRIC_SEED``): k-means (k=4, n_init=10)
  and GMM (k=4) on standardised codes → ARI, NMI, silhouette of the true series; linear and
  RBF SVMs (StandardScaler, C=1) with 5-fold stratified CV → mean accuracy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ugvae_pipeline.data.grouping import random_groups
from ugvae_pipeline.data.series import series_groups
from ugvae_pipeline.evaluation import baselines
from ugvae_pipeline.evaluation.encoding import encode_groups
from ugvae_pipeline.evaluation.metrics import gmm_loglik_curve, group_structure_scores

SERIES = ("even", "odd", "fibonacci", "primes")
GROUPS_PER_SERIES = 50
GROUP_SIZE = 128
SERIES_SEED = 2024
RANDOM_SEED = 2025
N_RANDOM_GROUPS = 50
METRIC_SEED = 0


def protocol_groups(labels: np.ndarray, heldout: np.ndarray) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """``(series groups [200, 128], their table, random groups [50, 128])`` from held-out images."""
    groups, table, _ = series_groups(labels, heldout, GROUPS_PER_SERIES, GROUP_SIZE, SERIES, seed=SERIES_SEED)
    rand = random_groups(heldout, N_RANDOM_GROUPS, GROUP_SIZE, seed=RANDOM_SEED)
    return groups, table, rand


def baseline_scores(images: np.ndarray, labels: np.ndarray, heldout: np.ndarray) -> dict[str, dict[str, float]]:
    """Scores of the model-free baselines (mean image, oracle label histogram)."""
    groups, table, rand = protocol_groups(labels, heldout)
    types = table["group_type"].to_numpy(str)
    return {
        "mean_image": group_structure_scores(
            baselines.mean_image(images, groups), types, METRIC_SEED, baselines.mean_image(images, rand)
        ),
        "oracle_histogram": group_structure_scores(
            baselines.label_histogram(labels, groups), types, METRIC_SEED, baselines.label_histogram(labels, rand)
        ),
    }


def model_scores(
    model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, heldout: np.ndarray
) -> tuple[dict[str, dict[str, float]], pd.DataFrame]:
    """Scores of μ_β and of the mean local code of a trained model, and the GMM curve of μ_β."""
    groups, table, rand = protocol_groups(labels, heldout)
    types = table["group_type"].to_numpy(str)
    codes = encode_groups(model, images, groups)
    random_codes = encode_groups(model, images, rand)
    scores = {
        "global_code": group_structure_scores(codes.global_code, types, METRIC_SEED, random_codes.global_code),
        "mean_local_code": group_structure_scores(
            baselines.mean_local_code(codes.local_code), types, METRIC_SEED,
            baselines.mean_local_code(random_codes.local_code),
        ),
    }
    curve = gmm_loglik_curve(codes.global_code, random_codes.global_code, seed=METRIC_SEED)
    return scores, curve
