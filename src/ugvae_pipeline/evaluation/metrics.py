"""Group-structure metrics on codes: clustering, SVM accuracy, GMM log-likelihood curves.

Every function takes codes ``[n, D]`` and group-type labels ``[n]`` (any hashable values)
and standardises the codes itself, so the scale of a code never decides a score.

One reduction, the same for every representation (global code, mean local code, mean image,
oracle histogram, mixture-probability means, ...): the codes are standardised (zero mean, unit
variance per dimension) and, when they have more than ``max_dims`` (:data:`MAX_DIMS`, 64)
dimensions, projected by PCA onto their first ``max_dims`` principal components (the scores
of the projection, not whitened, so the leading directions keep their share of the variance).
A representation with at most ``max_dims`` dimensions is only standardised: its scores are
exactly those of the unreduced method.

- Clustering (k-means, GMM, silhouette of the true types): the scaler and the PCA are fitted
  on all the codes being clustered. Both are unsupervised (no labels), so nothing leaks.
- SVM accuracies: ``StandardScaler → PCA → SVC`` is one sklearn Pipeline, so the scaler and
  the PCA are fitted inside each cross-validation training fold only.
- GMM log-likelihood curve: the same reduction, fitted on the union of grouped and random codes.

The PCA is an exact SVD (LAPACK, deterministic, ``n² · D``) for up to 2,000 codes, the
evaluation's usual size, and randomized with ``random_state=seed`` beyond (deterministic too,
``n · D · max_dims``); never a ``D × D`` covariance. sklearn's ``svd_flip`` fixes the signs.
The scores run with one BLAS thread (``threadpoolctl``): the matrices are small, and on a
busy 2-core machine a multi-threaded OpenBLAS SVD stalls (the whole score table of 150
CelebA-size groups took 8 s and 69 s with two threads, 3 s twice with one).

Why: the scores must use the same method for every representation, and must finish on a
12,288-dim mean image (3×64×64 CelebA): a full-covariance GMM there holds ``D²`` floats per
component (1.2 GB each) and took minutes at ~16 GB. After the reduction every representation
has at most 64 dimensions, where a full-covariance GMM costs milliseconds, so the clustering
GMM keeps full covariances for every representation (the §4.3 curve keeps its diagonal ones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

MAX_DIMS = 64
"""Representations with more dimensions are scored on their first MAX_DIMS principal components."""

_one_blas_thread = threadpool_limits.wrap(limits=1, user_api="blas")


def standardise(codes: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per dimension ``[n, D]``; constant dimensions stay 0."""
    codes = np.asarray(codes, dtype=np.float64)
    std = codes.std(0)
    return (codes - codes.mean(0)) / np.where(std > 0, std, 1.0)


EXACT_SVD_MAX = 2000
"""PCA by exact SVD when the codes have at most this many rows (or columns), else randomized."""


def _pca(n_components: int, n_samples: int, n_features: int, seed: int) -> PCA:
    """The PCA of the reduction: exact (LAPACK SVD, ``n² · D``) for up to ``EXACT_SVD_MAX`` codes,
    randomized with ``random_state=seed`` (``n · D · n_components``) beyond. Never sklearn's
    ``auto``, which may pick ``covariance_eigh`` and build a ``D × D`` matrix."""
    solver = "full" if min(n_samples, n_features) <= EXACT_SVD_MAX else "randomized"
    return PCA(n_components=n_components, svd_solver=solver, random_state=seed)


@_one_blas_thread
def reduce_codes(codes: np.ndarray, max_dims: int = MAX_DIMS, seed: int = 0) -> np.ndarray:
    """Standardised codes ``[n, D]`` → ``[n, min(D, max_dims)]``: PCA scores when ``D > max_dims``.

    The PCA (fitted on ``codes`` themselves, no labels) keeps ``min(max_dims, n)`` components;
    codes with ``D <= max_dims`` are only standardised (see the module docstring).
    """
    x = standardise(codes)
    if x.shape[1] <= max_dims:
        return x
    return _pca(min(max_dims, len(x)), *x.shape, seed).fit_transform(x)


@_one_blas_thread
def clustering_scores(
    codes: np.ndarray,
    group_types: np.ndarray,
    method: str = "kmeans",
    seed: int = 0,
    max_dims: int = MAX_DIMS,
) -> dict[str, float]:
    """Cluster the reduced codes into k = number of group types; compare with the types.

    Args:
        codes: ``[n, D]``, standardised and reduced by :func:`reduce_codes`.
        group_types: ``[n]`` true types.
        method: ``kmeans`` (n_init=10) or ``gmm`` (full covariance, n_init=3).
        seed: random_state of the clustering and of the PCA.
        max_dims: dimensions kept by the PCA when ``D > max_dims``.

    Returns:
        ``ari``, ``nmi`` of the predicted clusters, and ``silhouette`` of the *true* types on
        the reduced codes (how well separated the types are, -1..1).
    """
    x = reduce_codes(codes, max_dims, seed)
    types = np.asarray(group_types)
    k = len(np.unique(types))
    if method == "kmeans":
        pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    elif method == "gmm":
        pred = (
            GaussianMixture(k, covariance_type="full", n_init=3, random_state=seed, reg_covar=1e-4)
            .fit(x)
            .predict(x)
        )
    else:
        raise ValueError(f"method must be 'kmeans' or 'gmm', got {method!r}")
    sil = float(silhouette_score(x, types)) if 1 < k < len(types) and np.ptp(x) > 0 else 0.0
    return {
        "ari": float(adjusted_rand_score(types, pred)),
        "nmi": float(normalized_mutual_info_score(types, pred)),
        "silhouette": sil,
    }


@_one_blas_thread
def svm_accuracy(
    codes: np.ndarray,
    group_types: np.ndarray,
    kernel: str = "linear",
    folds: int = 5,
    seed: int = 0,
    max_dims: int = MAX_DIMS,
) -> float:
    """Mean accuracy of an SVM (StandardScaler → [PCA] → SVC(kernel), C=1) in stratified k-fold CV.

    The scaler, and the PCA to ``max_dims`` components when ``D > max_dims``, are fitted
    inside each training fold. ``codes [n, D]``, ``group_types [n]``.

    A fold whose fit fails raises its error (``error_score="raise"``): scikit-learn's default
    would score it NaN and return a NaN mean, logged as if it were a score.
    """
    x = np.asarray(codes, np.float64)
    steps = [StandardScaler()]
    if x.shape[1] > max_dims:
        smallest_training_fold = len(x) - -(-len(x) // folds)
        steps.append(
            _pca(min(max_dims, smallest_training_fold), smallest_training_fold, x.shape[1], seed)
        )
    model = make_pipeline(*steps, SVC(kernel=kernel, C=1.0))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(model, x, np.asarray(group_types), cv=cv, error_score="raise")
    return float(scores.mean())


@_one_blas_thread
def gmm_loglik_curve(
    grouped_codes: np.ndarray,
    random_codes: np.ndarray,
    components: range | list[int] = range(2, 10),
    seed: int = 0,
    max_dims: int = MAX_DIMS,
) -> pd.DataFrame:
    """Mean log-likelihood per code of grouped vs random codes under GMMs fitted on both.

    Paper §4.3: a GMM with c components is fitted on the union of the codes (``[n_g, D]`` and
    ``[n_r, D]``, standardised and reduced together by :func:`reduce_codes`); structured groups
    should sit in denser regions than random ones. Returns one row per c: ``components``,
    ``grouped``, ``random`` (mean log-density per code).
    """
    both = reduce_codes(np.concatenate([grouped_codes, random_codes]), max_dims, seed)
    grouped, random = both[: len(grouped_codes)], both[len(grouped_codes) :]
    rows = []
    for c in components:
        gmm = GaussianMixture(
            c, covariance_type="diag", n_init=2, random_state=seed, reg_covar=1e-4
        ).fit(both)
        rows.append(
            {
                "components": c,
                "grouped": float(gmm.score(grouped)),
                "random": float(gmm.score(random)),
            }
        )
    return pd.DataFrame(rows)


@_one_blas_thread
def group_structure_scores(
    codes: np.ndarray,
    group_types: np.ndarray,
    seed: int = 0,
    random_codes: np.ndarray | None = None,
    max_dims: int = MAX_DIMS,
) -> dict[str, float]:
    """Every score of one code space: k-means and GMM clustering, linear and RBF SVMs.

    With ``random_codes [n_r, D]``, also the SVM accuracies with random groups as one extra
    class (``*_with_random``). Codes with more than ``max_dims`` dimensions are reduced by PCA
    (module docstring).
    """
    out: dict[str, float] = {}
    for method in ("kmeans", "gmm"):
        for name, value in clustering_scores(codes, group_types, method, seed, max_dims).items():
            out[f"{method}_{name}"] = value
    out["svm_linear"] = svm_accuracy(codes, group_types, "linear", seed=seed, max_dims=max_dims)
    out["svm_rbf"] = svm_accuracy(codes, group_types, "rbf", seed=seed, max_dims=max_dims)
    if random_codes is not None:
        x = np.concatenate([codes, random_codes])
        y = np.concatenate(
            [
                np.asarray(group_types, dtype=object),
                np.full(len(random_codes), "random", dtype=object),
            ]
        )
        out["svm_linear_with_random"] = svm_accuracy(
            x, y.astype(str), "linear", seed=seed, max_dims=max_dims
        )
        out["svm_rbf_with_random"] = svm_accuracy(
            x, y.astype(str), "rbf", seed=seed, max_dims=max_dims
        )
    return out


def spread_ratio(means: np.ndarray, variances: np.ndarray) -> float:
    """How far apart groups' posteriors are, against how wide each one is: the root mean (over
    dimensions) of the between-group variance of the posterior means ``[n_groups, D]``,
    divided by the root mean (over groups and dimensions) of the posterior variances
    ``[n_groups, D]``. Below 1, two groups' codes differ by less than one posterior std: the
    code is used as a near-constant. NaN for an empty code or fewer than two groups."""
    means, variances = np.asarray(means, dtype=np.float64), np.asarray(variances, np.float64)
    if means.shape != variances.shape or means.ndim != 2:
        raise ValueError(
            f"means and variances must both be [n_groups, D], got {list(means.shape)} and "
            f"{list(variances.shape)}"
        )
    if means.shape[0] < 2 or means.shape[1] == 0:
        return float("nan")
    return float(np.sqrt(means.var(axis=0).mean() / variances.mean()))
