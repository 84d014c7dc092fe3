"""Grouping: which images form each training and evaluation group."""

from ugvae_pipeline.pipelines.grouping.pipeline import (
    create_domain_training_pipeline,
    create_pipeline,
    create_structured_pipelines,
)

__all__ = ["create_pipeline", "create_domain_training_pipeline", "create_structured_pipelines"]
