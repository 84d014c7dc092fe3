"""Code tables: encoded groups as one row per group and one row per image (Parquet-friendly).

Column names carry the dimension: ``global_mean_00``, ``global_var_00`` … for q(β | X),
``local_mean_00`` … and ``mixture_prob_00`` … for each image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ugvae_pipeline.evaluation.encoding import GroupCodes, RaggedGroupCodes


def _columns(prefix: str, values: np.ndarray) -> dict[str, np.ndarray]:
    width = max(2, len(str(values.shape[-1] - 1)))
    return {f"{prefix}_{i:0{width}d}": values[..., i] for i in range(values.shape[-1])}


def global_code_table(
    codes: GroupCodes | RaggedGroupCodes, group_metadata: pd.DataFrame
) -> pd.DataFrame:
    """One row per group: its metadata (without member lists) and μ_β, σ²_β."""
    meta = group_metadata.drop(columns=[c for c in ("member_labels",) if c in group_metadata])
    values = {
        **_columns("global_mean", codes.global_code),
        **_columns("global_var", codes.global_var),
    }
    return pd.concat([meta.reset_index(drop=True), pd.DataFrame(values)], axis=1)


def local_code_table(
    codes: GroupCodes,
    groups: np.ndarray,
    image_metadata: pd.DataFrame,
    group_metadata: pd.DataFrame,
) -> pd.DataFrame:
    """One row per image of every group: group, position, image metadata, μ_z and π."""
    n, b = groups.shape
    flat = groups.reshape(-1)
    table = pd.DataFrame(
        {
            "group_id": np.repeat(group_metadata["group_id"].to_numpy(), b),
            "group_type": np.repeat(group_metadata["group_type"].to_numpy(), b),
            "position": np.tile(np.arange(b), n),
            "image_id": image_metadata["image_id"].to_numpy()[flat],
            "label": image_metadata["label"].to_numpy()[flat],
        }
    )
    probs = codes.mixture_probs.reshape(n * b, -1)
    values = {
        **_columns("local_mean", codes.local_code.reshape(n * b, -1)),
        **_columns("mixture_prob", probs),
    }
    table = pd.concat([table, pd.DataFrame(values)], axis=1)
    table["component"] = probs.argmax(-1)
    return table


def image_code_table(codes: RaggedGroupCodes, image_metadata: pd.DataFrame) -> pd.DataFrame:
    """One row per image of groups of any sizes: its metadata (e.g. group, file, position),
    μ_z, π and the most probable component."""
    probs = codes.mixture_probs
    values = {**_columns("local_mean", codes.local_code), **_columns("mixture_prob", probs)}
    table = pd.concat([image_metadata.reset_index(drop=True), pd.DataFrame(values)], axis=1)
    table["component"] = probs.argmax(-1)
    return table


def code_matrix(table: pd.DataFrame, prefix: str) -> np.ndarray:
    """The ``[rows, D]`` block of columns ``<prefix>_NN`` of a code table."""
    return table[[c for c in table.columns if c.startswith(prefix + "_")]].to_numpy(np.float64)
