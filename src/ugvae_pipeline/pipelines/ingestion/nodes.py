"""Nodes of the ingestion pipeline."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ugvae_pipeline.data.cache import ImageCache
from ugvae_pipeline.data.splits import SPLITS

log = logging.getLogger(__name__)


def ingest_images(
    data_params: dict, image_cache: ImageCache
) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Images ``[N, C, H, W]`` uint8 (a memory map of the image cache), one metadata row per
    image, and ingestion metrics.

    The cache entry of ``data_params`` is reused when the source's files and the parameters are
    unchanged, and built otherwise. The metrics (for MLflow) count the images of each split
    (train, validation, test) and the unreadable files skipped with ``skip_bad_images: true``,
    and say whether the cache was reused, the seconds it took and the bytes it wrote.
    """
    images, metadata, entry = image_cache.load_or_build(data_params)
    counts = metadata["split"].value_counts().to_dict()
    log.info(
        "ingested %d images %s from %s: %s (cache %s, %s)",
        len(images),
        images.shape[1:],
        data_params["source"],
        counts,
        entry.key[:12],
        "reused" if entry.reused else "built",
    )
    metrics = {f"ingest_{split}_images": counts.get(split, 0) for split in SPLITS}
    metrics["ingest_skipped_images"] = int(metadata.attrs.get("skipped_images", 0))
    metrics["ingest_cache_reused"] = int(entry.reused)
    metrics["ingest_seconds"] = entry.seconds
    metrics["ingest_cache_bytes_written"] = entry.bytes_written
    return images, metadata, {name: [{"value": float(v), "step": 0}] for name, v in metrics.items()}
