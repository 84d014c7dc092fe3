"""Nodes of the encode pipeline: one's own groups of images into global and local codes."""

from __future__ import annotations

import logging

import pandas as pd

from ugvae_pipeline.data.group_folder import load_groups
from ugvae_pipeline.evaluation.code_tables import global_code_table, image_code_table
from ugvae_pipeline.evaluation.encoding import encode_groups_of_any_size
from ugvae_pipeline.models.registry import model_name

log = logging.getLogger(__name__)


def encode_own_groups(model, encode_params: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Global codes (one row per group: ``group``, ``n_images``, μ_β, σ²_β), local codes (one
    row per image: ``group``, ``file``, ``position``, μ_z, π, ``component``) and the counts
    for MLflow.

    The images are decoded as ingestion decodes them, to the model's own channels and image
    size; every group is encoded on its own images (any size, no padding).
    """
    config = model.config
    images, files = load_groups(
        encode_params["root"],
        config.channels,
        config.image_size,
        groups_csv=encode_params.get("groups_csv"),
        crop_size=encode_params.get("crop_size"),
        skip_bad_images=encode_params.get("skip_bad_images", False),
    )
    groups = files.groupby("group", sort=False).size().rename("n_images").reset_index()
    log.info(
        "encoding %d groups (%d images, %d to %d per group) from %s with the latest %s "
        "(%d x %d x %d images)",
        len(groups),
        len(files),
        groups["n_images"].min(),
        groups["n_images"].max(),
        encode_params["root"],
        model_name(model),
        config.channels,
        config.image_size,
        config.image_size,
    )
    codes = encode_groups_of_any_size(
        model,
        images,
        groups["n_images"].to_numpy(),
        chunk=encode_params.get("groups_per_chunk", 32),
        progress=encode_params.get("progress", "auto"),
    )
    counts = {
        "encode_groups": len(groups),
        "encode_images": len(files),
        "encode_skipped_images": files.attrs.get("skipped_images", 0),
    }
    metrics = {name: [{"value": float(value), "step": 0}] for name, value in counts.items()}
    return global_code_table(codes, groups), image_code_table(codes, files), metrics
