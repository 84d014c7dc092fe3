"""Evaluate: what the global code captures, scored against pooling baselines, with figures."""

from ugvae_pipeline.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
