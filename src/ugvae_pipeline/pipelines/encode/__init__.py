"""Encode: one's own groups of images (a folder of groups or a CSV) into code tables with the
latest trained model. Not part of ``__default__``: ``kedro run --pipelines=encode``."""

from ugvae_pipeline.pipelines.encode.pipeline import create_pipeline

__all__ = ["create_pipeline"]
