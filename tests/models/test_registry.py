"""model.name: one flat parameter block builds any of the four models."""

from __future__ import annotations

import pytest
import torch

from ugvae_pipeline.models import (
    MLVAE,
    UGVAE,
    BetaVAE,
    BetaVAEConfig,
    GMVAE,
    MLVAEConfig,
    build_model,
    load_model,
    model_config_from_params,
    model_name,
    reconstruct,
    save_model,
)
from ugvae_pipeline.models.registry import describe_training_groups, run_title, training_groups_strategy

# the shape of conf/base's model block: keys of several models side by side
PARAMS = {
    "architecture": "mlp28", "channels": 1, "image_size": 28, "dim_z": 4, "dim_beta": 6,
    "n_components": 3, "var_x": 0.2, "global_prior_factor": False, "global_factor_input": "probs",
    "global_factor_variance": "shared", "mixture_prior": "global", "beta": 2.5,
}


@pytest.mark.parametrize(
    "name, cls", [("ugvae", UGVAE), ("beta_vae", BetaVAE), ("gmvae", GMVAE), ("mlvae", MLVAE)]
)
def test_model_name_builds_its_model_from_the_shared_block(name, cls, tmp_path):
    model = build_model({**PARAMS, "name": name})
    assert type(model) is cls and model_name(model) == name
    assert model.config.dim_z == 4
    save_model(model, tmp_path / "m.pt")
    assert type(load_model(tmp_path / "m.pt")) is cls


def test_each_model_takes_only_its_own_keys():
    assert model_config_from_params({**PARAMS, "name": "beta_vae"}) == BetaVAEConfig(
        architecture="mlp28", dim_z=4, var_x=0.2, beta=2.5
    )
    assert model_config_from_params({**PARAMS, "name": "mlvae"}) == MLVAEConfig(architecture="mlp28", dim_z=4, dim_beta=6)
    assert model_config_from_params(PARAMS).n_components == 3  # no name: UG-VAE


def test_unknown_name_or_key_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"model.name='vae' is unknown; choose one of \['beta_vae', 'gmvae', 'mlvae', 'ugvae'\]"):
        model_config_from_params({**PARAMS, "name": "vae"})
    with pytest.raises(ValueError, match=r"unknown model parameter\(s\) \['model.n_component'\]; valid names are .*'n_components'"):
        model_config_from_params({"name": "gmvae", "n_component": 3})
    with pytest.raises(ValueError, match="model.beta must be a number >= 0"):
        model_config_from_params({**PARAMS, "name": "beta_vae", "beta": -0.5})


@pytest.mark.parametrize("name", ["ugvae", "beta_vae", "gmvae", "mlvae"])
def test_reconstruct_decodes_posterior_means_with_the_group_code_when_there_is_one(name):
    torch.manual_seed(0)
    model = build_model({**PARAMS, "name": name}).eval()
    x = torch.rand(2, 5, 1, 28, 28)
    out = reconstruct(model, x)
    assert out.shape == x.shape
    encoding = model.encode(x)
    group = encoding.global_mean if name in ("ugvae", "mlvae") else None
    torch.testing.assert_close(out, model.decode(encoding.local_mean, group))
    if name == "mlvae":  # the group code changes the decoding: a different group, another image
        other = model.decode(encoding.local_mean, encoding.global_mean.flip(0))
        assert not torch.allclose(out, other)


def test_ml_vae_always_trains_on_label_groups_and_reports_say_so():
    assert training_groups_strategy("mlvae", "random") == "labels"
    assert training_groups_strategy("ugvae", "random") == "random"
    assert training_groups_strategy("gmvae", "labels") == "labels"
    assert "ML-VAE's intended weak supervision" in describe_training_groups("mlvae", "random", "label")
    assert "without labels" in describe_training_groups("beta_vae", "random")
    title = run_title({"name": "mlvae"}, {"training": {"strategy": "random", "label_column": "digit"}})
    assert title.startswith("mlvae, trained on groups formed by labels") and "'digit'" in title
