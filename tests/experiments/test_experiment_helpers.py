import numpy as np

from ugvae_pipeline.data.series import series_digits
from ugvae_pipeline.experiments.domain_alignment import load_uci_digits_28, mixed_group_plan
from ugvae_pipeline.experiments.series_diagnostics import component_purity
from ugvae_pipeline.experiments.series_variants import VARIANTS, training_plan
from ugvae_pipeline.models.config import UGVAEConfig


def test_component_purity():
    labels = np.array([[0, 0, 1, 1]])
    one_hot = lambda comps: np.eye(3)[np.array(comps)][None]  # noqa: E731
    assert component_purity(one_hot([0, 0, 1, 1]), labels) == 1.0
    assert component_purity(one_hot([0, 0, 0, 0]), labels) == 0.5
    assert component_purity(one_hot([0, 1, 0, 1]), labels) == 0.5


def test_mixed_group_plan_draws_each_pool_with_probability_half():
    a, b = np.arange(0, 100), np.arange(100, 150)
    plan = mixed_group_plan(a, b, n_groups=20, group_size=128, epochs=2, seed=0)
    assert plan.shape == (2, 20, 128)
    assert np.isin(plan, np.r_[a, b]).all()
    assert abs((plan < 100).mean() - 0.5) < 0.02


def test_uci_helper_places_digits_in_a_centred_box():
    images, labels, split = load_uci_digits_28()
    assert images.shape == (1797, 1, 28, 28) and images.dtype == np.uint8
    assert images[:, :, :4].max() == 0 and images[:, :, 24:].max() == 0
    assert images.max() == 255 and set(np.unique(labels)) == set(range(10))
    assert abs((split == "heldout").mean() - 0.2) < 0.01


def test_series_training_plan_uses_training_images_only():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    train = np.arange(0, 1500)
    plan = training_plan(labels, train, "series", epochs=2, seed=1)
    assert plan.shape == (2, 1500 // 128, 128) and np.isin(plan, train).all()
    # every group reads as a window of one of the four series
    strings = {n: np.r_[series_digits(n), series_digits(n)[:128]] for n in ("even", "odd", "fibonacci", "primes")}
    digits = labels[plan[0, 0]]
    windows = [np.lib.stride_tricks.sliding_window_view(s, 128) for s in strings.values()]
    assert any((w == digits).all(1).any() for w in windows)


def test_every_variant_is_a_valid_config():
    for name, (_, model_over, _, groups) in VARIANTS.items():
        UGVAEConfig.from_dict({"dim_z": 10, **model_over})
        assert groups in ("random", "series")
