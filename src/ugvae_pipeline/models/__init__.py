"""UG-VAE and its baselines (β-VAE, GMVAE, ML-VAE, Neural Statistician) on one model base,
their configurations, objectives and file format."""

from ugvae_pipeline.models.base import BaseGroupVAE
from ugvae_pipeline.models.beta_vae import BetaVAE, BetaVAEConfig
from ugvae_pipeline.models.config import ModelConfig
from ugvae_pipeline.models.elbo import ELBOTerms, product_of_gaussians, ugvae_elbo
from ugvae_pipeline.models.gmvae import GMVAE, GMVAEConfig
from ugvae_pipeline.models.io import load_model, save_model
from ugvae_pipeline.models.mlvae import MLVAE, MLVAEConfig
from ugvae_pipeline.models.neural_statistician import (
    NeuralStatistician,
    NeuralStatisticianConfig,
)
from ugvae_pipeline.models.outputs import GroupEncoding, LatentNoise, ModelOutput
from ugvae_pipeline.models.registry import (
    MODEL_TYPES,
    build_model,
    model_class,
    model_config_from_params,
    model_for_config,
    model_name,
)
from ugvae_pipeline.models.ugvae import UGVAE, UGVAEConfig

__all__ = [
    "BaseGroupVAE",
    "BetaVAE",
    "BetaVAEConfig",
    "GMVAE",
    "GMVAEConfig",
    "MLVAE",
    "MLVAEConfig",
    "NeuralStatistician",
    "NeuralStatisticianConfig",
    "ELBOTerms",
    "GroupEncoding",
    "LatentNoise",
    "ModelConfig",
    "ModelOutput",
    "UGVAE",
    "UGVAEConfig",
    "MODEL_TYPES",
    "build_model",
    "load_model",
    "model_class",
    "model_config_from_params",
    "model_for_config",
    "model_name",
    "product_of_gaussians",
    "save_model",
    "ugvae_elbo",
]
