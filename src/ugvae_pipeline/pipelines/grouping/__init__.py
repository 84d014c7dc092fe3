"""Grouping: which images form each training and held-out group (the ``grouping`` stage) and
each evaluation group (built at the start of the ``extract`` stage)."""

from ugvae_pipeline.pipelines.grouping.pipeline import create_evaluation_pipeline, create_pipeline

__all__ = ["create_evaluation_pipeline", "create_pipeline"]
