"""Extract: evaluation groups encoded into tables of global and local codes."""

from ugvae_pipeline.pipelines.extract.pipeline import create_pipeline

__all__ = ["create_pipeline"]
