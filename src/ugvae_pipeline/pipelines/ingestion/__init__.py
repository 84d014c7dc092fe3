"""Ingestion: the configured image source into a uint8 image cache and a metadata table."""

from ugvae_pipeline.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
