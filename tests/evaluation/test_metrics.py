import time
import tracemalloc

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ugvae_pipeline.evaluation.metrics import (
    MAX_DIMS,
    clustering_scores,
    gmm_loglik_curve,
    group_structure_scores,
    reduce_codes,
    spread_ratio,
    standardise,
    svm_accuracy,
)


def _separated(n_per=25, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(4, dim) * 20
    codes = np.concatenate([c + rng.normal(size=(n_per, dim)) for c in centres])
    types = np.repeat(np.array(["even", "odd", "fibonacci", "primes"]), n_per)
    return codes, types


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_perfectly_separated_codes_score_one(method):
    codes, types = _separated()
    scores = clustering_scores(codes, types, method)
    assert scores["ari"] == pytest.approx(1.0)
    assert scores["nmi"] == pytest.approx(1.0)
    assert scores["silhouette"] > 0.5


def test_svms_are_perfect_on_separated_codes():
    codes, types = _separated()
    assert svm_accuracy(codes, types, "linear") == 1.0
    assert svm_accuracy(codes, types, "rbf") == 1.0


def test_shuffled_labels_give_chance():
    codes, types = _separated(n_per=50)
    shuffled = np.random.default_rng(1).permutation(types)
    assert abs(clustering_scores(codes, shuffled)["ari"]) < 0.05
    assert 0.1 < svm_accuracy(codes, shuffled, "linear") < 0.42  # chance is 0.25


def test_pure_noise_codes_score_chance():
    rng = np.random.default_rng(2)
    codes = rng.normal(size=(200, 10))
    types = np.repeat(np.arange(4), 50)
    assert abs(clustering_scores(codes, types)["ari"]) < 0.05
    assert svm_accuracy(codes, types) < 0.4


def test_scale_of_codes_does_not_matter():
    codes, types = _separated()
    scaled = codes * np.array([1e-4, 1e3, 1.0, 5.0, 1e-2])
    assert clustering_scores(scaled, types)["ari"] == pytest.approx(1.0)
    np.testing.assert_allclose(standardise(scaled).std(0), 1.0)


def test_with_random_adds_a_class():
    codes, types = _separated()
    random_codes = np.random.default_rng(3).normal(size=(25, 5)) + np.full(5, -20.0)
    scores = group_structure_scores(codes, types, random_codes=random_codes)
    assert scores["svm_linear_with_random"] == 1.0
    assert scores["kmeans_ari"] == pytest.approx(1.0)
    assert set(scores) >= {"gmm_ari", "svm_rbf", "svm_rbf_with_random", "kmeans_silhouette"}


def test_gmm_curve_prefers_structured_codes():
    codes, _ = _separated(n_per=40, dim=3)
    random_codes = np.random.default_rng(4).uniform(-10, 30, size=(60, 3))
    curve = gmm_loglik_curve(codes, random_codes, components=[2, 4, 6])
    assert curve["components"].tolist() == [2, 4, 6]
    assert (curve["grouped"] > curve["random"]).all()


# --- the reduction: PCA to MAX_DIMS, the same for every representation -----------------------

CELEBA_DIMS = 3 * 64 * 64


def _scored_within(limit_s: float, limit_mb: float, *args, **kwargs) -> dict[str, float]:
    """``group_structure_scores`` with its wall time and peak traced (numpy) memory bounded."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        scores = group_structure_scores(*args, **kwargs)
        elapsed = time.perf_counter() - start
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert elapsed < limit_s, f"{elapsed:.1f} s"
    assert peak_mb < limit_mb, f"{peak_mb:.0f} MB"  # one full covariance of 12,288 dims is 1,152 MB
    return scores


def _image_like(
    n_per: int, separation: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two group types of 12,288-dim 'mean images' (float32) whose means differ by ``separation``
    along one random direction, in isotropic unit noise; and random codes of neither type."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=CELEBA_DIMS)
    direction /= np.linalg.norm(direction)
    noise = rng.normal(size=(3 * n_per, CELEBA_DIMS)).astype(np.float32)
    shift = np.repeat([-separation / 2, separation / 2, 0.0], n_per)[:, None] * direction
    codes = (noise + shift).astype(np.float32)
    types = np.repeat(np.array(["Black_Hair=1", "Blond_Hair=1"]), n_per)
    return codes[: 2 * n_per], types, codes[2 * n_per :]


def test_high_dim_separated_types_score_perfectly_in_bounded_time_and_memory():
    codes, types, random_codes = _image_like(n_per=60, separation=80.0, seed=5)
    scores = _scored_within(30, 400, codes, types, 0, random_codes)
    assert scores["kmeans_ari"] == pytest.approx(1.0)
    assert scores["gmm_ari"] == pytest.approx(1.0)
    assert scores["kmeans_silhouette"] > 0.1  # noise: about 0 (next test)
    assert scores["svm_linear"] == 1.0 and scores["svm_rbf"] == 1.0
    assert scores["svm_linear_with_random"] > 0.9  # random codes sit between the two types


def test_high_dim_noise_scores_chance_in_bounded_time_and_memory():
    codes, types, _ = _image_like(n_per=60, separation=0.0, seed=6)
    scores = _scored_within(30, 400, codes, types, 0)
    assert abs(scores["kmeans_ari"]) < 0.1 and abs(scores["gmm_ari"]) < 0.1
    assert abs(scores["kmeans_silhouette"]) < 0.05
    assert 0.3 < scores["svm_linear"] < 0.7  # chance is 0.5
    assert 0.3 < scores["svm_rbf"] < 0.7


def test_reduce_codes_keeps_max_dims_components_and_leaves_low_dim_codes_standardised():
    rng = np.random.default_rng(7)
    wide = rng.normal(size=(100, 500)) * rng.uniform(0.1, 10, size=500)
    reduced = reduce_codes(wide, seed=3)
    assert reduced.shape == (100, MAX_DIMS)
    np.testing.assert_allclose(reduced, reduce_codes(wide, seed=3))  # deterministic with the seed
    assert np.all(np.diff(reduced.var(0)) <= 1e-9)  # principal components, largest variance first
    assert reduce_codes(wide[:20]).shape == (20, 20)  # never more components than codes
    narrow = wide[:, :MAX_DIMS]
    np.testing.assert_array_equal(reduce_codes(narrow), standardise(narrow))


def test_many_codes_use_a_seeded_randomized_pca_that_finds_the_leading_components(monkeypatch):
    from ugvae_pipeline.evaluation import metrics

    rng = np.random.default_rng(10)
    # a clear spectrum: 8 strong directions over weak isotropic noise
    wide = rng.normal(size=(300, 8)) * np.arange(20, 4, -2) @ rng.normal(
        size=(8, 400)
    ) + rng.normal(size=(300, 400))
    exact = reduce_codes(wide, max_dims=8)
    monkeypatch.setattr(metrics, "EXACT_SVD_MAX", 100)
    assert metrics._pca(8, 300, 400, 0).svd_solver == "randomized"
    randomized = reduce_codes(wide, max_dims=8, seed=1)
    np.testing.assert_array_equal(randomized, reduce_codes(wide, max_dims=8, seed=1))
    np.testing.assert_allclose(
        np.abs(randomized), np.abs(exact), rtol=1e-3, atol=1e-3 * np.abs(exact).max()
    )


def _old_scores(codes, types, seed, random_codes):
    """The scores as computed before the reduction existed: sklearn directly on standardised codes."""
    x = standardise(codes)
    k = len(np.unique(types))
    out = {}
    for method in ("kmeans", "gmm"):
        if method == "kmeans":
            pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
        else:
            pred = (
                GaussianMixture(
                    k, covariance_type="full", n_init=3, random_state=seed, reg_covar=1e-4
                )
                .fit(x)
                .predict(x)
            )
        out[f"{method}_ari"] = adjusted_rand_score(types, pred)
        out[f"{method}_nmi"] = normalized_mutual_info_score(types, pred)
        out[f"{method}_silhouette"] = silhouette_score(x, types)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    both = np.concatenate([codes, random_codes])
    both_types = np.concatenate([types, np.full(len(random_codes), "random")])
    for kernel in ("linear", "rbf"):
        model = make_pipeline(StandardScaler(), SVC(kernel=kernel, C=1.0))
        out[f"svm_{kernel}"] = cross_val_score(model, codes, types, cv=cv).mean()
        out[f"svm_{kernel}_with_random"] = cross_val_score(model, both, both_types, cv=cv).mean()
    return out


@pytest.mark.parametrize("dim", [5, MAX_DIMS])
def test_low_dim_scores_are_those_of_the_unreduced_method(dim):
    rng = np.random.default_rng(8)
    centres = (
        rng.normal(size=(4, dim)) * 1.5 * np.sqrt(5 / dim)
    )  # overlapping types: scores between 0 and 1
    types = np.repeat(np.array(["even", "odd", "fibonacci", "primes"]), 30)
    codes = centres[np.repeat(np.arange(4), 30)] + rng.normal(size=(120, dim))
    random_codes = rng.normal(size=(30, dim))
    scores = group_structure_scores(codes, types, seed=2, random_codes=random_codes)
    expected = _old_scores(codes, types, 2, random_codes)
    assert set(scores) == set(expected)
    for name, value in expected.items():
        assert scores[name] == pytest.approx(value, abs=1e-9), name
    assert (
        0.2 < scores["kmeans_ari"] < 0.95 and 0.4 < scores["svm_linear"] < 1.0
    )  # not a trivial case


def test_high_dim_svm_fits_scaler_and_pca_inside_each_training_fold():
    rng = np.random.default_rng(9)
    codes = rng.normal(size=(50, 300)) + np.repeat([[0.0], [0.4]], 25, axis=0)
    types = np.repeat(["a", "b"], 25)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=4)
    manual = []
    for train, test in cv.split(codes, types):
        scaler = StandardScaler().fit(codes[train])
        pca = PCA(n_components=40, svd_solver="full").fit(scaler.transform(codes[train]))
        svc = SVC(kernel="linear", C=1.0).fit(
            pca.transform(scaler.transform(codes[train])), types[train]
        )
        manual.append(
            (svc.predict(pca.transform(scaler.transform(codes[test]))) == types[test]).mean()
        )
    assert svm_accuracy(codes, types, "linear", seed=4, max_dims=40) == pytest.approx(
        np.mean(manual)
    )
    # 40 codes per training fold: never more components than that, whatever max_dims
    assert svm_accuracy(codes, types, "linear", seed=4, max_dims=200) == pytest.approx(
        np.mean(manual)
    )


def test_spread_ratio_is_the_between_group_spread_over_the_posterior_std():
    # two groups, two dimensions: means 0 and 2 in each (between-group variance 1), posterior
    # variances 4 → spread 1 / std 2 = 0.5; exact in float64
    means = np.array([[0.0, 0.0], [2.0, 2.0]])
    assert spread_ratio(means, np.full((2, 2), 4.0)) == 0.5
    # a constant code has no spread, however sharp its posterior
    assert spread_ratio(np.ones((5, 3)), np.full((5, 3), 1e-6)) == 0.0
    # scaling the code scales spread and std alike
    rng = np.random.default_rng(0)
    mu, var = rng.normal(size=(40, 6)), rng.uniform(0.1, 2.0, size=(40, 6))
    assert spread_ratio(3 * mu, 9 * var) == pytest.approx(spread_ratio(mu, var), rel=1e-12)
    assert np.isnan(spread_ratio(mu[:1], var[:1])) and np.isnan(spread_ratio(mu[:, :0], var[:, :0]))
    with pytest.raises(ValueError, match=r"must both be \[n_groups, D\]"):
        spread_ratio(mu, var[:, :3])
