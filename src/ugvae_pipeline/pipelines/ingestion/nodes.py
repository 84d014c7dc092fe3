"""Nodes of the ingestion pipeline."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ugvae_pipeline.data.sources import load_source
from ugvae_pipeline.data.splits import SPLITS

log = logging.getLogger(__name__)


def ingest_images(data_params: dict) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Images ``[N, C, H, W]`` uint8, one metadata row per image, and ingestion metrics.

    The metrics (for MLflow) count the images of each split (train, validation, test) and the unreadable files skipped
    with ``skip_bad_images: true``.
    """
    images, metadata = load_source(data_params)
    counts = metadata["split"].value_counts().to_dict()
    log.info(
        "ingested %d images %s from %s: %s",
        len(images),
        images.shape[1:],
        data_params["source"],
        counts,
    )
    metrics = {f"ingest_{split}_images": counts.get(split, 0) for split in SPLITS}
    metrics["ingest_skipped_images"] = int(metadata.attrs.get("skipped_images", 0))
    return images, metadata, {name: [{"value": float(v), "step": 0}] for name, v in metrics.items()}
