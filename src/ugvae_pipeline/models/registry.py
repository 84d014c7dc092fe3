"""Every model the pipeline can train, picked by ``model.name``: name → (model class, config class).

``model`` parameters are one flat mapping shared by all models: ``name`` picks the model and
each model takes the keys its config declares (``n_components`` serves UG-VAE and GMVAE,
``dim_beta`` UG-VAE, ML-VAE and the Neural Statistician, ``beta`` the β-VAE alone); keys that
only other models use are ignored, and a key no model knows is an error naming the valid ones.

What a model can do (``has_group_latent``, ``has_mixture``, ``trains_on_label_groups``) is
declared on its class: ask ``model_class(name)`` or the model itself.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ugvae_pipeline.models.base import BaseGroupVAE
from ugvae_pipeline.models.beta_vae import BetaVAE, BetaVAEConfig
from ugvae_pipeline.models.config import ModelConfig
from ugvae_pipeline.models.gmvae import GMVAE, GMVAEConfig
from ugvae_pipeline.models.mlvae import MLVAE, MLVAEConfig
from ugvae_pipeline.models.neural_statistician import (
    NeuralStatistician,
    NeuralStatisticianConfig,
)
from ugvae_pipeline.models.ugvae import UGVAE, UGVAEConfig

DEFAULT_MODEL = "ugvae"  # model.name when the parameters do not set it
MODEL_TYPES: dict[str, tuple[type[BaseGroupVAE], type[ModelConfig]]] = {
    "ugvae": (UGVAE, UGVAEConfig),
    "beta_vae": (BetaVAE, BetaVAEConfig),
    "gmvae": (GMVAE, GMVAEConfig),
    "mlvae": (MLVAE, MLVAEConfig),
    "neural_statistician": (NeuralStatistician, NeuralStatisticianConfig),
}


def model_class(name: str) -> type[BaseGroupVAE]:
    """The model class of ``model.name`` ``name``."""
    if name not in MODEL_TYPES:
        raise ValueError(f"model.name={name!r} is unknown; choose one of {sorted(MODEL_TYPES)}")
    return MODEL_TYPES[name][0]


def model_name(model: BaseGroupVAE) -> str:
    """The ``model.name`` of a model instance."""
    for name, (model_cls, _) in MODEL_TYPES.items():
        if type(model) is model_cls:
            return name
    raise TypeError(f"{type(model).__name__} is not a known model; known: {sorted(MODEL_TYPES)}")


def configured_name(model_params: dict[str, Any]) -> str:
    """``model.name`` of a ``model`` parameter group (``DEFAULT_MODEL`` when unset)."""
    return model_params.get("name", DEFAULT_MODEL)


def model_config_from_params(params: dict[str, Any]) -> ModelConfig:
    """The config of the model ``params["name"]`` (default ``ugvae``) from the ``model`` group."""
    values = dict(params)
    name = configured_name(values)
    values.pop("name", None)
    model_class(name)  # an unknown name is an error naming the known ones
    known = {f.name for _, config_cls in MODEL_TYPES.values() for f in fields(config_cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(
            f"unknown model parameter(s) {sorted(f'model.{key}' for key in unknown)}; "
            f"valid names are {sorted(known | {'name'})}"
        )
    config_cls = MODEL_TYPES[name][1]
    own = {f.name for f in fields(config_cls)}
    return config_cls.from_dict({key: value for key, value in values.items() if key in own})


def model_for_config(config: ModelConfig) -> BaseGroupVAE:
    """A freshly initialised model of the type whose config ``config`` is."""
    model_cls = next(cls for cls, config_cls in MODEL_TYPES.values() if config_cls is type(config))
    return model_cls(config)


def build_model(params: dict[str, Any]) -> BaseGroupVAE:
    """A freshly initialised model from the ``model`` parameter group."""
    return model_for_config(model_config_from_params(params))
