"""Every model the pipeline can train, picked by ``model.name``, and what sets them apart.

``model`` parameters are one flat mapping shared by all models: ``name`` picks the model and
each model takes the keys its config declares (``n_components`` serves UG-VAE and GMVAE,
``dim_beta`` UG-VAE and ML-VAE, ``beta`` the β-VAE alone); keys that only other models use
are ignored, and a key no model knows is an error naming the valid ones.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch
from torch import Tensor, nn

from ugvae_pipeline.models.beta_vae import BetaVAE, BetaVAEConfig
from ugvae_pipeline.models.config import UGVAEConfig
from ugvae_pipeline.models.gmvae import GMVAE, GMVAEConfig
from ugvae_pipeline.models.mlvae import MLVAE, MLVAEConfig
from ugvae_pipeline.models.ugvae import UGVAE

DEFAULT_MODEL = "ugvae"  # model.name when the parameters do not set it
MODEL_TYPES: dict[str, tuple[type[nn.Module], type]] = {
    "ugvae": (UGVAE, UGVAEConfig),
    "beta_vae": (BetaVAE, BetaVAEConfig),
    "gmvae": (GMVAE, GMVAEConfig),
    "mlvae": (MLVAE, MLVAEConfig),
}

# models with a latent shared by a group (scored by it); the others are scored by the mean of
# the group's local codes
GROUP_LATENT_MODELS = frozenset({"ugvae", "mlvae"})
# models with mixture components (component figures, evaluate.sweep)
MIXTURE_MODELS = frozenset({"ugvae", "gmvae"})
# weakly supervised: trained on groups formed by labels (ML-VAE, Bouchacourt et al. 2018)
LABEL_GROUP_MODELS = frozenset({"mlvae"})


def model_name(model: nn.Module) -> str:
    """The ``model.name`` of a model instance."""
    for name, (model_cls, _) in MODEL_TYPES.items():
        if type(model) is model_cls:
            return name
    raise TypeError(f"{type(model).__name__} is not a known model; known: {sorted(MODEL_TYPES)}")


def configured_name(model_params: dict[str, Any]) -> str:
    """``model.name`` of a ``model`` parameter group (``DEFAULT_MODEL`` when unset)."""
    return model_params.get("name", DEFAULT_MODEL)


def model_config_from_params(params: dict[str, Any]) -> Any:
    """The config of the model ``params["name"]`` (default ``ugvae``) from the ``model`` group."""
    values = dict(params)
    name = configured_name(values)
    values.pop("name", None)
    if name not in MODEL_TYPES:
        raise ValueError(f"model.name={name!r} is unknown; choose one of {sorted(MODEL_TYPES)}")
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


def model_for_config(config: Any) -> nn.Module:
    """A freshly initialised model of the type whose config ``config`` is."""
    model_cls = next(cls for cls, config_cls in MODEL_TYPES.values() if config_cls is type(config))
    return model_cls(config)


def build_model(params: dict[str, Any]) -> nn.Module:
    """A freshly initialised model from the ``model`` parameter group."""
    return model_for_config(model_config_from_params(params))


@torch.no_grad()
def reconstruct(model: nn.Module, x: Tensor) -> Tensor:
    """Pixel means decoded from the posterior means of groups ``x [G, B, C, H, W]``."""
    encoding = model.encode(x)
    group_code = encoding.global_mean if model_name(model) in GROUP_LATENT_MODELS else None
    return model.decode(encoding.local_mean, group_code)


def training_groups_strategy(name: str, strategy: str) -> str:
    """The training-group strategy a model gets: ``labels`` for the weakly supervised models
    (ML-VAE), ``groups.training.strategy`` for the others."""
    return "labels" if name in LABEL_GROUP_MODELS else strategy


def training_groups(model_params: dict[str, Any], groups_params: dict[str, Any]) -> tuple[str, str]:
    """How a run's training groups are formed, from its parameters: ``(strategy, label_column)``,
    the strategy as ``training_groups_strategy`` gives it for ``model.name``."""
    training = groups_params.get("training") or {}
    strategy = training_groups_strategy(configured_name(model_params), training.get("strategy", "random"))
    return strategy, training.get("label_column", "label")


def describe_training_groups(name: str, strategy: str, label_column: str = "label") -> str:
    """One sentence for reports: how the training groups of this run were formed."""
    effective = training_groups_strategy(name, strategy)
    if effective == "labels":
        supervision = (
            "ML-VAE's intended weak supervision" if name in LABEL_GROUP_MODELS else "weak supervision"
        )
        return f"groups formed by labels: every group shares one value of {label_column!r} ({supervision})"
    if effective == "mixed_domains":
        return "mixed-domain groups, formed without labels"
    return "random groups, formed without labels (unsupervised)"


def run_title(model_params: dict[str, Any], groups_params: dict[str, Any]) -> str:
    """``<model.name>, trained on <how its training groups were formed>``, for every report."""
    name = configured_name(model_params)
    return f"{name}, trained on {describe_training_groups(name, *training_groups(model_params, groups_params))}"
