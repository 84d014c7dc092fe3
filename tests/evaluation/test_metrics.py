import numpy as np
import pytest

from ugvae_pipeline.evaluation.metrics import (
    clustering_scores,
    gmm_loglik_curve,
    group_structure_scores,
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
