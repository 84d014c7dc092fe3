"""Domain-alignment metrics (paper §4.2): global code separates domains, local code is shared."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from ugvae_pipeline.evaluation.metrics import svm_accuracy


def domain_accuracy(global_codes: np.ndarray, domains: np.ndarray, seed: int = 0) -> float:
    """Linear-SVM CV accuracy of the domain of single-domain groups from μ_β ``[n, D]``."""
    return svm_accuracy(global_codes, domains, "linear", seed=seed)


def cross_domain_knn_accuracy(
    codes_a: np.ndarray, labels_a: np.ndarray, codes_b: np.ndarray, labels_b: np.ndarray, k: int = 5
) -> float:
    """k-NN label accuracy fitted on domain A's local codes and scored on domain B's.

    ``codes_* [n_*, dim_z]`` (one row per image), ``labels_* [n_*]``. Codes are standardised
    with A's statistics, so B is read in A's coordinates (a shared local space scores high).
    """
    scaler = StandardScaler().fit(codes_a)
    knn = KNeighborsClassifier(n_neighbors=k).fit(scaler.transform(codes_a), labels_a)
    return float(knn.score(scaler.transform(codes_b), labels_b))


def symmetric_cross_domain_knn_accuracy(
    codes_a: np.ndarray, labels_a: np.ndarray, codes_b: np.ndarray, labels_b: np.ndarray, k: int = 5
) -> float:
    """Mean of A→B and B→A :func:`cross_domain_knn_accuracy`."""
    return 0.5 * (
        cross_domain_knn_accuracy(codes_a, labels_a, codes_b, labels_b, k)
        + cross_domain_knn_accuracy(codes_b, labels_b, codes_a, labels_a, k)
    )
