"""A trained model as an MLflow pyfunc model: groups of images in, their codes out.

The served model takes one row per image: ``group`` (any name) and the image's pixels in
[0, 1] (8-bit values divided by 255), flattened C·H·W as ``pixel_00000`` … (the model's
``channels × image_size²``); a value outside [0, 1] or not finite (NaN, ±inf) is refused with
an error that says so (HTTP 400 from ``mlflow models serve``) before anything is encoded. It
returns one row per group: ``group``, ``n_images``, μ_β (``global_mean_*``) and σ²_β
(``global_var_*``), the posterior of each group's global code from its own images (groups of
any sizes); with the parameter ``codes="local"``, one row per image with μ_z and the mixture
probabilities instead. It is what the ``encode`` pipeline computes, behind a REST endpoint:

    mlflow models serve -m models:/ugvae-variant-mnist_embedded-1x28x28/1 --env-manager local -h 127.0.0.1 -p 5001

Each training run registers it under a name that says the model, the data and the input
shape (:func:`registered_model_name`, default ``{model}-{source}-{shape}``), so every version
under one name takes the same input columns.

The versioned ``model.pt`` (weights and config, loaded without unpickling code) stays the
format to share and archive; the pyfunc model is pickled and needs this package (logged with
it as code) and trusted runs.
"""

from __future__ import annotations

import string
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema

from ugvae_pipeline.evaluation.encoding import encode_groups_of_any_size
from ugvae_pipeline.models.registry import model_name
from ugvae_pipeline.runs import model_variant

REGISTERED_NAME = "{model}-{source}-{shape}"  # e.g. ugvae-variant-mnist_embedded-1x28x28
REGISTERED_NAME_FIELDS = {
    "model": "model.name, for UG-VAE with -paper or -variant (ugvae-variant, gmvae)",
    "name": "model.name alone (ugvae)",
    "source": "the data it was trained on: data.source, a mixed source's domains joined by +",
    "shape": "the input's channels x height x width (1x28x28)",
}


def check_registered_name(template: str) -> str:
    """``template`` if it is a registered-name template MLflow accepts and that holds
    ``{shape}`` (so versions under one name share an input signature), else a ValueError
    saying what is wrong and naming the fields it may use."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:  # e.g. an unmatched brace
        problems = [str(err)]
    else:
        fields = {field for _, field, _, _ in parts if field is not None}
        literal = "".join(text for text, *_ in parts)
        problems = [f"unknown field {{{f}}}" for f in sorted(fields - set(REGISTERED_NAME_FIELDS))]
        if "shape" not in fields:
            problems.append("no {shape} (versions of other input shapes would share the name)")
        problems += [f"a {c!r} (MLflow refuses it in names)" for c in "/:" if c in literal]
    if problems:
        allowed = "; ".join(f"{{{k}}}: {v}" for k, v in REGISTERED_NAME_FIELDS.items())
        raise ValueError(
            f"registered_name {template!r} has {', '.join(problems)}; build it from {allowed} "
            f"(default {REGISTERED_NAME!r})"
        )
    return template


def registered_model_name(
    model: torch.nn.Module, source: str, template: str = REGISTERED_NAME
) -> str:
    """The Model Registry name of ``model`` trained on ``source`` (see ``REGISTERED_NAME_FIELDS``),
    e.g. ``ugvae-variant-mnist_embedded-1x28x28``: versions under one name share an input
    signature. ``/`` and ``:`` (refused by MLflow) in the values become ``_``."""
    cfg = model.config
    name = model_name(model)
    variant = model_variant(name, cfg.to_dict())
    label = name if variant == "-" else f"{name}-{'paper' if variant == 'paper' else 'variant'}"
    values = {
        "model": label,
        "name": name,
        "source": source,
        "shape": f"{cfg.channels}x{cfg.image_size}x{cfg.image_size}",
    }
    safe = {k: v.replace("/", "_").replace(":", "_") for k, v in values.items()}
    return check_registered_name(template).format(**safe)


def pixel_columns(model: torch.nn.Module) -> list[str]:
    """The input's pixel column names for a model: ``pixel_00000`` … ``C·H·W`` of them."""
    cfg = model.config
    return [f"pixel_{i:05d}" for i in range(cfg.channels * cfg.image_size**2)]


def bad_input(message: str) -> MlflowException:
    """An input error that ``mlflow models serve`` answers as HTTP 400 with ``message`` itself
    (any other exception becomes a generic "unexpected error" with a stack trace)."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def check_pixels(pixels: np.ndarray) -> None:
    """Refuse pixel values that are not finite or lie outside [0, 1], saying which and how many.

    Raises:
        MlflowException: (``INVALID_PARAMETER_VALUE``) naming the expected range; values up to
            255 are most likely 8-bit pixels not divided by 255, and the message says so.
    """
    finite = np.isfinite(pixels)
    outside = finite & ((pixels < 0.0) | (pixels > 1.0))
    if finite.all() and not outside.any():
        return
    problems = []
    if not finite.all():
        problems.append(f"{int((~finite).sum())} not finite (NaN or ±inf)")
    if outside.any():
        values = pixels[finite]
        low, high = float(values.min()), float(values.max())
        problems.append(f"{int(outside.sum())} outside [0, 1] (min {low:g}, max {high:g})")
    hint = ""
    if outside.any() and 1.0 < high <= 255.0 and low >= 0.0:
        hint = "; they look like 8-bit values 0–255: divide them by 255"
    raise bad_input(
        f"pixel values must be finite numbers in [0, 1] (8-bit values divided by 255); of "
        f"{pixels.size} values, {' and '.join(problems)}{hint}"
    )


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
            raise bad_input(
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
        pixels = model_input[columns].to_numpy(np.float64)
        check_pixels(pixels)  # before any encoding
        images = np.rint(pixels[order] * 255.0).astype(np.uint8)
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
