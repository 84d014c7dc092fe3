"""Nodes of the ingestion pipeline."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ugvae_pipeline.data.sources import load_source

log = logging.getLogger(__name__)


def ingest_images(data_params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Images ``[N, C, H, W]`` uint8 and one metadata row per image, from ``data.source``."""
    images, metadata = load_source(data_params)
    counts = metadata["split"].value_counts().to_dict()
    log.info("ingested %d images %s from %s: %s", len(images), images.shape[1:], data_params["source"], counts)
    return images, metadata
