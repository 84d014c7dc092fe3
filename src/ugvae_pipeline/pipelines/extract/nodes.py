"""Nodes of the extract pipeline: encode evaluation groups with posterior means."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ugvae_pipeline.evaluation.code_tables import global_code_table, local_code_table
from ugvae_pipeline.evaluation.encoding import encode_groups
from ugvae_pipeline.models.registry import configured_name, model_name
from ugvae_pipeline.progress import progress_mode


def extract_codes(
    model,
    images: np.ndarray,
    image_metadata: pd.DataFrame,
    groups: np.ndarray,
    group_metadata: pd.DataFrame,
    extract_params: dict,
    model_params: dict,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Global codes (one row per group) and local codes (one row per image), in chunks.

    The model must be the one ``model.name`` names, since the reports and the MLflow run
    describe the run by its parameters."""
    saved, configured = model_name(model), configured_name(model_params)
    if saved != configured:
        raise ValueError(
            f"the latest trained_model is a {saved} but model.name={configured}: "
            f"pass --params model.name={saved} to score it, or train a {configured} first"
        )
    codes = encode_groups(
        model,
        images,
        groups,
        chunk=extract_params["groups_per_chunk"],
        progress=progress_mode(extract_params.get("progress", "auto"), "extract.progress"),
    )
    return (
        global_code_table(codes, group_metadata),
        local_code_table(codes, groups, image_metadata, group_metadata),
    )
