"""A trained model as an MLflow pyfunc model: groups of images in, their codes out.

The served model takes one row per image: ``group`` (any name) and the image's pixels in
[0, 1], flattened C·H·W as ``pixel_00000`` … (the model's ``channels × image_size²``). It
returns one row per group: ``group``, ``n_images``, μ_β (``global_mean_*``) and σ²_β
(``global_var_*``), the posterior of each group's global code from its own images (groups of
any sizes); with the parameter ``codes="local"``, one row per image with μ_z and the mixture
probabilities instead. It is what the ``encode`` pipeline computes, behind a REST endpoint:

    mlflow models serve -m models:/ugvae/1 --env-manager local -h 127.0.0.1 -p 5001

The versioned ``model.pt`` (weights and config, loaded without unpickling code) stays the
format to share and archive; the pyfunc model is pickled and needs this package (logged with
it as code) and trusted runs.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema

from ugvae_pipeline.evaluation.encoding import encode_groups_of_any_size


def pixel_columns(model: torch.nn.Module) -> list[str]:
    """The input's pixel column names for a model: ``pixel_00000`` … ``C·H·W`` of them."""
    cfg = model.config
    return [f"pixel_{i:05d}" for i in range(cfg.channels * cfg.image_size**2)]


class GroupCodesModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper of a trained model (any of the project's models)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.cpu().eval()

    def signature(self) -> ModelSignature:
        """Input: ``group`` and the pixel columns; output: the global codes; param ``codes``."""
        cfg = self.model.config
        dim = cfg.dim_beta if self.model.has_group_latent else cfg.dim_z
        inputs = Schema(
            [ColSpec(DataType.string, "group")]
            + [ColSpec(DataType.double, c) for c in pixel_columns(self.model)]
        )
        outputs = Schema(
            [ColSpec(DataType.string, "group"), ColSpec(DataType.long, "n_images")]
            + [ColSpec(DataType.float, f"global_mean_{i:02d}") for i in range(dim)]
            + [ColSpec(DataType.float, f"global_var_{i:02d}") for i in range(dim)]
        )
        params = ParamSchema([ParamSpec("codes", DataType.string, "global")])
        return ModelSignature(inputs=inputs, outputs=outputs, params=params)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Codes of the groups in ``model_input`` (see the module docstring)."""
        cfg = self.model.config
        columns = pixel_columns(self.model)
        missing = [c for c in ("group", columns[0], columns[-1]) if c not in model_input]
        if missing:
            raise ValueError(
                f"input needs a 'group' column and {len(columns)} pixel columns "
                f"{columns[0]}..{columns[-1]} (C·H·W = {cfg.channels}·{cfg.image_size}·{cfg.image_size}, "
                f"values in [0, 1]); missing {missing}"
            )
        groups = model_input["group"].astype(str)
        order = np.argsort(
            pd.Categorical(groups, categories=pd.unique(groups)).codes, kind="stable"
        )
        names = list(pd.unique(groups))
        sizes = groups.value_counts().reindex(names).to_numpy()
        pixels = model_input[columns].to_numpy(np.float64)[order]
        images = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
        images = images.reshape(len(images), cfg.channels, cfg.image_size, cfg.image_size)
        codes = encode_groups_of_any_size(self.model, images, sizes, progress="off")
        if (params or {}).get("codes", "global") == "local":
            local = pd.DataFrame({"group": np.repeat(names, sizes)})
            for i in range(codes.local_code.shape[1]):
                local[f"local_mean_{i:02d}"] = codes.local_code[:, i]
            for k in range(codes.mixture_probs.shape[1]):
                local[f"mixture_prob_{k:02d}"] = codes.mixture_probs[:, k]
            return local
        table = pd.DataFrame({"group": names, "n_images": sizes.astype(np.int64)})
        for i in range(codes.global_code.shape[1]):
            table[f"global_mean_{i:02d}"] = codes.global_code[:, i]
        for i in range(codes.global_var.shape[1]):
            table[f"global_var_{i:02d}"] = codes.global_var[:, i]
        return table
