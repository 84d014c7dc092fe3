"""Group-structure metrics on codes: clustering, SVM accuracy, GMM log-likelihood curves.

Every function takes codes ``[n, D]`` and group-type labels ``[n]`` (any hashable values)
and standardises the codes itself, so the scale of a code never decides a score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC


def standardise(codes: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per dimension ``[n, D]``; constant dimensions stay 0."""
    codes = np.asarray(codes, dtype=np.float64)
    std = codes.std(0)
    return (codes - codes.mean(0)) / np.where(std > 0, std, 1.0)


def clustering_scores(
    codes: np.ndarray, group_types: np.ndarray, method: str = "kmeans", seed: int = 0
) -> dict[str, float]:
    """Cluster standardised codes into k = number of group types; compare with the types.

    Args:
        codes: ``[n, D]``.
        group_types: ``[n]`` true types.
        method: ``kmeans`` (n_init=10) or ``gmm`` (full covariance, n_init=3).
        seed: random_state of the clustering.

    Returns:
        ``ari``, ``nmi`` of the predicted clusters, and ``silhouette`` of the *true* types on
        the standardised codes (how well separated the types are, -1..1).
    """
    x = standardise(codes)
    types = np.asarray(group_types)
    k = len(np.unique(types))
    if method == "kmeans":
        pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    elif method == "gmm":
        pred = GaussianMixture(k, covariance_type="full", n_init=3, random_state=seed, reg_covar=1e-4).fit(x).predict(x)
    else:
        raise ValueError(f"method must be 'kmeans' or 'gmm', got {method!r}")
    sil = float(silhouette_score(x, types)) if 1 < k < len(types) and np.ptp(x) > 0 else 0.0
    return {
        "ari": float(adjusted_rand_score(types, pred)),
        "nmi": float(normalized_mutual_info_score(types, pred)),
        "silhouette": sil,
    }


def svm_accuracy(
    codes: np.ndarray, group_types: np.ndarray, kernel: str = "linear", folds: int = 5, seed: int = 0
) -> float:
    """Mean accuracy of an SVM (StandardScaler → SVC(kernel), C=1) in stratified k-fold CV.

    The scaler is fitted inside each training fold. ``codes [n, D]``, ``group_types [n]``.
    """
    model = make_pipeline(StandardScaler(), SVC(kernel=kernel, C=1.0))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, np.asarray(codes, np.float64), np.asarray(group_types), cv=cv).mean())


def gmm_loglik_curve(
    grouped_codes: np.ndarray,
    random_codes: np.ndarray,
    components: range | list[int] = range(2, 10),
    seed: int = 0,
) -> pd.DataFrame:
    """Mean log-likelihood per code of grouped vs random codes under GMMs fitted on both.

    Paper §4.3: a GMM with c components is fitted on the standardised union of the codes
    (``[n_g, D]`` and ``[n_r, D]``, standardised together); structured groups should sit in
    denser regions than random ones. Returns one row per c: ``components``, ``grouped``,
    ``random`` (mean log-density per code).
    """
    both = standardise(np.concatenate([grouped_codes, random_codes]))
    grouped, random = both[: len(grouped_codes)], both[len(grouped_codes) :]
    rows = []
    for c in components:
        gmm = GaussianMixture(c, covariance_type="diag", n_init=2, random_state=seed, reg_covar=1e-4).fit(both)
        rows.append({"components": c, "grouped": float(gmm.score(grouped)), "random": float(gmm.score(random))})
    return pd.DataFrame(rows)


def group_structure_scores(
    codes: np.ndarray, group_types: np.ndarray, seed: int = 0, random_codes: np.ndarray | None = None
) -> dict[str, float]:
    """Every score of one code space: k-means and GMM clustering, linear and RBF SVMs.

    With ``random_codes [n_r, D]``, also the SVM accuracies with random groups as one extra
    class (``*_with_random``).
    """
    out: dict[str, float] = {}
    for method in ("kmeans", "gmm"):
        for name, value in clustering_scores(codes, group_types, method, seed).items():
            out[f"{method}_{name}"] = value
    out["svm_linear"] = svm_accuracy(codes, group_types, "linear", seed=seed)
    out["svm_rbf"] = svm_accuracy(codes, group_types, "rbf", seed=seed)
    if random_codes is not None:
        x = np.concatenate([codes, random_codes])
        y = np.concatenate([np.asarray(group_types, dtype=object), np.full(len(random_codes), "random", dtype=object)])
        out["svm_linear_with_random"] = svm_accuracy(x, y.astype(str), "linear", seed=seed)
        out["svm_rbf_with_random"] = svm_accuracy(x, y.astype(str), "rbf", seed=seed)
    return out
