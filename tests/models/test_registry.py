"""model.name: one flat parameter block builds any of the five models."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from ugvae_pipeline.models import (
    GMVAE,
    MLVAE,
    MODEL_TYPES,
    UGVAE,
    BaseGroupVAE,
    BetaVAE,
    BetaVAEConfig,
    GMVAEConfig,
    MLVAEConfig,
    ModelConfig,
    NeuralStatistician,
    NeuralStatisticianConfig,
    UGVAEConfig,
    build_model,
    load_model,
    model_class,
    model_config_from_params,
    model_name,
    registry,
    save_model,
)

# the shape of conf/base's model block: keys of several models side by side
PARAMS = {
    "architecture": "mlp28",
    "channels": 1,
    "image_size": 28,
    "dim_z": 4,
    "dim_beta": 6,
    "n_components": 3,
    "var_x": 0.2,
    "global_prior_factor": False,
    "global_factor_input": "probs",
    "global_factor_variance": "shared",
    "mixture_prior": "global",
    "beta": 2.5,
}


@pytest.mark.parametrize(
    "name, cls",
    [
        ("ugvae", UGVAE),
        ("beta_vae", BetaVAE),
        ("gmvae", GMVAE),
        ("mlvae", MLVAE),
        ("neural_statistician", NeuralStatistician),
    ],
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
    assert model_config_from_params({**PARAMS, "name": "mlvae"}) == MLVAEConfig(
        architecture="mlp28", dim_z=4, dim_beta=6
    )
    assert model_config_from_params(
        {**PARAMS, "name": "neural_statistician"}
    ) == NeuralStatisticianConfig(architecture="mlp28", dim_z=4, dim_beta=6)
    assert model_config_from_params(PARAMS).n_components == 3  # no name: UG-VAE


def test_unknown_name_or_key_is_refused_with_the_valid_ones():
    with pytest.raises(
        ValueError,
        match=r"model.name='vae' is unknown; choose one of "
        r"\['beta_vae', 'gmvae', 'mlvae', 'neural_statistician', 'ugvae'\]",
    ):
        model_config_from_params({**PARAMS, "name": "vae"})
    with pytest.raises(
        ValueError,
        match=r"unknown model parameter\(s\) \['model.n_component'\]; valid names are .*'n_components'",
    ):
        model_config_from_params({"name": "gmvae", "n_component": 3})
    with pytest.raises(ValueError, match="model.beta must be a number >= 0"):
        model_config_from_params({**PARAMS, "name": "beta_vae", "beta": -0.5})


@pytest.mark.parametrize("name", ["ugvae", "beta_vae", "gmvae", "mlvae", "neural_statistician"])
def test_reconstruct_decodes_posterior_means_with_the_group_code_when_there_is_one(name):
    torch.manual_seed(0)
    model = build_model({**PARAMS, "name": name}).eval()
    x = torch.rand(2, 5, 1, 28, 28)
    out = model.reconstruct(x)
    assert out.shape == x.shape
    encoding = model.encode(x)
    group = encoding.global_mean if name in ("ugvae", "mlvae", "neural_statistician") else None
    torch.testing.assert_close(out, model.decode(encoding.local_mean, group))
    if group is not None:  # the group code changes the decoding: a different group, another image
        other = model.decode(encoding.local_mean, encoding.global_mean.flip(0))
        assert not torch.allclose(out, other)


# what each model can do: (has_group_latent, has_mixture, trains_on_label_groups)
CAPABILITIES = {
    "ugvae": (True, True, False),
    "beta_vae": (False, False, False),
    "gmvae": (False, True, False),
    "mlvae": (True, False, True),
    "neural_statistician": (True, False, False),
}


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_each_model_class_declares_its_capabilities(name):
    cls = model_class(name)
    declared = ("has_group_latent", "has_mixture", "trains_on_label_groups")
    assert all(key in vars(cls) for key in declared)  # on the class itself, not inherited
    assert tuple(getattr(cls, key) for key in declared) == CAPABILITIES[name]
    model = build_model({**PARAMS, "name": name})
    assert isinstance(model, BaseGroupVAE) and model.has_group_latent == cls.has_group_latent


def test_the_registry_only_maps_names_to_model_and_config_classes():
    assert MODEL_TYPES == {
        "ugvae": (UGVAE, UGVAEConfig),
        "beta_vae": (BetaVAE, BetaVAEConfig),
        "gmvae": (GMVAE, GMVAEConfig),
        "mlvae": (MLVAE, MLVAEConfig),
        "neural_statistician": (NeuralStatistician, NeuralStatisticianConfig),
    }
    for model_cls, config_cls in MODEL_TYPES.values():
        assert issubclass(model_cls, BaseGroupVAE) and issubclass(config_cls, ModelConfig)
    # no name sets: capabilities live on the classes
    assert not [key for key, value in vars(registry).items() if isinstance(value, (set, frozenset))]
    with pytest.raises(ValueError, match=r"model.name='vae' is unknown"):
        model_class("vae")


def test_configs_share_the_shape_fields_and_add_only_their_own():
    shared = ["architecture", "channels", "image_size", "dim_z", "var_x"]
    own = {
        UGVAEConfig: {
            "dim_beta",
            "n_components",
            "global_prior_factor",
            "global_encoder",
            "global_factor_input",
            "global_factor_variance",
            "mixture_prior",
            "contrastive_weight",
        },
        BetaVAEConfig: {"beta"},
        GMVAEConfig: {"n_components"},
        MLVAEConfig: {"dim_beta"},
        NeuralStatisticianConfig: {"dim_beta"},
    }
    for config_cls, extra in own.items():
        names = [f.name for f in fields(config_cls)]
        assert names[: len(shared)] == shared and set(names[len(shared) :]) == extra
        assert not set(shared) & set(config_cls.__annotations__)  # declared once, on ModelConfig
