"""UG-VAE and its baselines (β-VAE, GMVAE, ML-VAE), their configurations, objectives and file format."""

from ugvae_pipeline.models.beta_vae import BetaVAE, BetaVAEConfig
from ugvae_pipeline.models.config import UGVAEConfig
from ugvae_pipeline.models.elbo import ELBOTerms, product_of_gaussians, ugvae_elbo
from ugvae_pipeline.models.gmvae import GMVAE, GMVAEConfig
from ugvae_pipeline.models.io import load_model, save_model
from ugvae_pipeline.models.mlvae import MLVAE, MLVAEConfig
from ugvae_pipeline.models.registry import MODEL_TYPES, build_model, model_config_from_params, model_name, reconstruct
from ugvae_pipeline.models.ugvae import GroupEncoding, LatentNoise, UGVAE, UGVAEOutput

__all__ = [
    "BetaVAE",
    "BetaVAEConfig",
    "GMVAE",
    "GMVAEConfig",
    "MLVAE",
    "MLVAEConfig",
    "ELBOTerms",
    "GroupEncoding",
    "LatentNoise",
    "UGVAE",
    "UGVAEConfig",
    "UGVAEOutput",
    "MODEL_TYPES",
    "build_model",
    "load_model",
    "model_config_from_params",
    "model_name",
    "reconstruct",
    "product_of_gaussians",
    "save_model",
    "ugvae_elbo",
]
