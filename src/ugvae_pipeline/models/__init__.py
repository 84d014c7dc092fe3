"""UG-VAE model, its configuration, its objective and its file format."""

from ugvae_pipeline.models.config import UGVAEConfig
from ugvae_pipeline.models.elbo import ELBOTerms, product_of_gaussians, ugvae_elbo
from ugvae_pipeline.models.io import load_model, save_model
from ugvae_pipeline.models.ugvae import GroupEncoding, LatentNoise, UGVAE, UGVAEOutput

__all__ = [
    "ELBOTerms",
    "GroupEncoding",
    "LatentNoise",
    "UGVAE",
    "UGVAEConfig",
    "UGVAEOutput",
    "load_model",
    "product_of_gaussians",
    "save_model",
    "ugvae_elbo",
]
