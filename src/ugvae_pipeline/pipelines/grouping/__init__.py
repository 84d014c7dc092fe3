"""Grouping: which images form each training, held-out and evaluation group."""

from ugvae_pipeline.pipelines.grouping.pipeline import create_pipeline

__all__ = ["create_pipeline"]
