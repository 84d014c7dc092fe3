"""The β-effect scores: how much the global code moves the decoded images beside the local code."""

import math

import numpy as np
import pytest
import torch

from ugvae_pipeline.evaluation.beta_effect import (
    BETA_EFFECT_SCORES,
    beta_effect_scores,
    codes_from_tables,
    derangement,
    other_type_partners,
)
from ugvae_pipeline.evaluation.code_tables import global_code_table, local_code_table
from ugvae_pipeline.evaluation.encoding import encode_groups
from ugvae_pipeline.models import build_model

DIM_Z, DIM_BETA = 10, 20
BETA_KEYS = [k for k in BETA_EFFECT_SCORES if not k.startswith(("z_", "component_"))]
COMPONENT_KEYS = [k for k in BETA_EFFECT_SCORES if k.startswith("component_")]


def _codes(n_groups=6, group_size=4, seed=0):
    rng = np.random.default_rng(seed)
    types = np.repeat(["a", "b", "c"], n_groups // 3)
    return (
        rng.normal(size=(n_groups, DIM_BETA)),
        rng.normal(size=(n_groups, group_size, DIM_Z)),
        types,
    )


def _ugvae(seed=0):
    torch.manual_seed(seed)
    return build_model({"name": "ugvae"})


def test_derangement_and_other_type_partners():
    rng = np.random.default_rng(0)
    for n in (2, 3, 17):
        partner = derangement(n, rng)
        assert sorted(partner) == list(range(n)) and (partner != np.arange(n)).all()
    types = np.array(["x", "y", "x", "z", "y", "x", "z"])
    for seed in range(5):
        partner = other_type_partners(types, np.random.default_rng(seed))
        assert partner.shape == (7,) and (types[partner] != types).all()
    # every group of another type is drawn for some seed
    draws = {int(other_type_partners(types, np.random.default_rng(s))[0]) for s in range(200)}
    assert draws == {1, 3, 4, 6}
    assert other_type_partners(np.array(["x", "x"]), rng) is None
    with pytest.raises(ValueError, match="at least two"):
        derangement(1, rng)


def test_decoder_ignoring_beta_gives_no_beta_effect():
    model = _ugvae()
    with torch.no_grad():
        model.decoder[0].weight[:, DIM_Z:] = 0  # decoder input is [z ; β]
    beta, z, types = _codes()
    scores = beta_effect_scores(model, beta, z, types, seed=0)
    assert set(scores) == set(BETA_EFFECT_SCORES)
    assert scores["beta_change"] == 0 and scores["beta_change_across_types"] == 0
    assert scores["beta_effect"] == 0 and scores["beta_effect_across_types"] == 0
    assert scores["z_change"] > 1e-3
    # β still moves the component means μ_k(β) of the prior, so the decoded ones change
    assert scores["component_beta_change"] > 0 and scores["component_spread"] > 0


def test_decoder_ignoring_z_gives_no_z_change():
    model = _ugvae()
    with torch.no_grad():
        model.decoder[0].weight[:, :DIM_Z] = 0
    beta, z, types = _codes()
    scores = beta_effect_scores(model, beta, z, types, seed=0)
    assert scores["z_change"] == 0 and scores["beta_change"] > 1e-3
    assert scores["beta_effect"] == math.inf
    # every component decodes to the same image: no spread, only β moves them
    assert scores["component_spread"] == 0 and scores["component_beta_effect"] == math.inf


def test_two_groups_of_one_image_match_a_direct_computation():
    # with two groups of one image every pairing is forced: the groups swap β, the images z
    model = _ugvae(1)
    beta, z, _ = _codes(n_groups=2, group_size=1)
    types = np.array(["a", "b"])
    scores = beta_effect_scores(model, beta, z, types, seed=3)
    b, zz = torch.as_tensor(beta).float(), torch.as_tensor(z).float()
    with torch.no_grad():
        base = model.decode(zz, b)
        swap_beta = model.decode(zz, b.flip(0))
        swap_z = model.decode(zz.flip(0), b)
        means, _ = model.component_prior(b)
        comp = model.decode(means, b)  # [2, K, 1, 28, 28]
    expected_beta = float((swap_beta - base).abs().mean())
    assert scores["beta_change"] == pytest.approx(expected_beta, rel=1e-5)
    assert scores["beta_change_across_types"] == pytest.approx(expected_beta, rel=1e-5)
    assert scores["z_change"] == pytest.approx(float((swap_z - base).abs().mean()), rel=1e-5)
    assert scores["beta_effect"] == pytest.approx(
        scores["beta_change"] / scores["z_change"], rel=1e-9
    )
    k = comp.shape[1]
    pairs = [(comp[:, i] - comp[:, j]).abs().mean() for i in range(k) for j in range(i + 1, k)]
    assert scores["component_spread"] == pytest.approx(float(torch.stack(pairs).mean()), rel=1e-5)
    assert scores["component_beta_change"] == pytest.approx(
        float((comp.flip(0) - comp).abs().mean()), rel=1e-5
    )


@pytest.mark.parametrize("name", ["beta_vae", "gmvae", "mlvae", "neural_statistician"])
def test_baselines_get_nan_for_the_latents_they_lack(name):
    torch.manual_seed(0)
    model = build_model({"name": name})
    beta, z, types = _codes()
    group_latent, mixture = name in ("mlvae", "neural_statistician"), name == "gmvae"
    scores = beta_effect_scores(model, beta if group_latent else None, z, types)
    assert scores["z_change"] > 0
    for key in BETA_KEYS:
        assert math.isfinite(scores[key]) == group_latent, key
    assert math.isfinite(scores["component_spread"]) == mixture
    for key in COMPONENT_KEYS[1:]:  # the β-based component scores
        assert math.isnan(scores[key]), key
    if mixture:  # GMVAE: f(μ_k) of its fixed components
        means, _ = model.component_prior()
        with torch.no_grad():
            decoded = model.decode(means[None])[0]
        k = len(decoded)
        expected = np.mean(
            [
                float((decoded[i] - decoded[j]).abs().mean())
                for i in range(k)
                for j in range(i + 1, k)
            ]
        )
        assert scores["component_spread"] == pytest.approx(expected, rel=1e-5)


def _group_images(n_groups, group_size, rng):
    """uint8 digit-free toy images: each group type draws a bar in its own rows, images vary
    in the bar's columns (a local factor) and groups in its brightness (a global factor)."""
    images = np.zeros((n_groups, group_size, 1, 28, 28), dtype=np.uint8)
    types = np.arange(n_groups) % 2
    for g in range(n_groups):
        rows = slice(4, 12) if types[g] == 0 else slice(16, 24)
        level = rng.integers(120, 256)
        for i in range(group_size):
            left = rng.integers(0, 20)
            images[g, i, 0, rows, left : left + 8] = level
    return images.reshape(n_groups * group_size, 1, 28, 28), np.where(types == 0, "top", "bottom")


@pytest.fixture(scope="module")
def trained():
    """A UG-VAE trained for a few steps on toy groups, and its codes of 8 evaluation groups."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = build_model({"name": "ugvae"})
    train, _ = _group_images(16, 8, rng)
    x = torch.from_numpy(train).float().div(255).view(16, 8, 1, 28, 28)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(40):
        optimiser.zero_grad()
        model(x).loss.mean().backward()
        optimiser.step()
    model.eval()
    images, types = _group_images(8, 8, rng)
    groups = np.arange(64).reshape(8, 8)
    return model, encode_groups(model, images, groups, progress="off"), groups, types


def test_trained_model_gives_finite_positive_deterministic_scores(trained):
    model, codes, _, types = trained
    scores = beta_effect_scores(
        model, codes.global_code, codes.local_code, types, seed=0, groups_per_chunk=3
    )
    for key, value in scores.items():
        assert math.isfinite(value) and value > 0, (key, value)
    # chunking changes nothing, the seed fixes the pairings, and the model stays in eval mode
    whole = beta_effect_scores(
        model, codes.global_code, codes.local_code, types, seed=0, groups_per_chunk=100
    )
    assert whole == pytest.approx(scores, rel=1e-6)
    assert beta_effect_scores(
        model, codes.global_code, codes.local_code, types, seed=0
    ) == pytest.approx(scores)
    other = beta_effect_scores(model, codes.global_code, codes.local_code, types, seed=1)
    assert other["z_change"] != scores["z_change"]
    assert not model.training
    model.train()
    beta_effect_scores(model, codes.global_code, codes.local_code, types)
    assert model.training  # the caller's mode is restored
    model.eval()


def test_codes_from_tables_order_groups_as_global_codes(trained):
    import pandas as pd

    model, codes, groups, types = trained
    meta = pd.DataFrame({"group_id": np.arange(8), "group_type": types})
    images = pd.DataFrame({"image_id": np.arange(64), "label": np.zeros(64, int)})
    global_table = (
        global_code_table(codes, meta).iloc[::-1].reset_index(drop=True)
    )  # reversed order
    local_table = local_code_table(codes, groups, images, meta).sample(frac=1, random_state=0)
    beta, z, table_types = codes_from_tables(global_table, local_table)
    np.testing.assert_allclose(beta, codes.global_code[::-1])
    np.testing.assert_allclose(z, codes.local_code[::-1])
    assert list(table_types) == list(types[::-1])
