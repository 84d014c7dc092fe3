"""Compare: the tracked runs of an MLflow experiment side by side (model, data, groups, seeds)."""

from ugvae_pipeline.pipelines.compare.pipeline import create_pipeline

__all__ = ["create_pipeline"]
