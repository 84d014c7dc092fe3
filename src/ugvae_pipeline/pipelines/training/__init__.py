"""Training: a UG-VAE fitted on the training groups, with its history and figures."""

from ugvae_pipeline.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
