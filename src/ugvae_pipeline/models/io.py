"""Saving and loading models: config beside the weights, loaded with ``weights_only=True``.

The file holds only plain Python values and tensors, so loading never unpickles code. A file
that needs arbitrary unpickling, names an unknown model type, or whose weights do not match
its config is refused with an error that says which.

Beside them, a model's ``provenance`` (a dict of plain values: the MLflow run that trained it,
its seed, its training groups, the images it was fitted on) is saved when the model has one and
set on every loaded model (``{}`` for files written before it was recorded).
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any, BinaryIO

import torch

from ugvae_pipeline.models.registry import MODEL_TYPES, model_name

FORMAT_VERSION = 1


def model_to_payload(model: torch.nn.Module) -> dict[str, Any]:
    """The dictionary written to disk: format version, model type, config, ``state_dict`` and
    the model's ``provenance`` attribute (``{}`` when it has none)."""
    return {
        "format_version": FORMAT_VERSION,
        "model_type": model_name(model),
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "provenance": dict(getattr(model, "provenance", None) or {}),
    }


def save_model(model: torch.nn.Module, file: str | os.PathLike | BinaryIO) -> None:
    torch.save(model_to_payload(model), file)


class CorruptModelFile(ValueError):
    """A model file that is truncated or corrupt: not a readable ``torch.save`` archive."""


def load_model(
    file: str | os.PathLike | BinaryIO | bytes, map_location: str | torch.device = "cpu"
):
    """Rebuild a model from a file written by :func:`save_model`; returned in eval mode, with
    the file's ``provenance`` as the model's attribute of that name."""
    source = io.BytesIO(file) if isinstance(file, bytes) else file
    try:
        payload = torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused what the file would unpickle
        raise ValueError(
            f"refusing to load model file {_name(file)}: it is not a plain config + state_dict "
            f"file loadable with weights_only=True ({type(err).__name__}: {str(err)[:300]})"
        ) from err
    except Exception as err:  # an archive cut short or altered, an empty file, ...
        raise CorruptModelFile(
            f"model file {_name(file)} is truncated or corrupt: torch cannot read it as a saved "
            f"model ({type(err).__name__}: {str(err)[:200]})"
        ) from err
    if not isinstance(payload, dict) or not {"model_type", "config", "state_dict"} <= set(payload):
        raise ValueError(
            f"model file {_name(file)} lacks model_type/config/state_dict; "
            "it was not written by ugvae_pipeline.models.io.save_model"
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"model file {_name(file)} has format_version {payload.get('format_version')!r}; "
            f"this version reads {FORMAT_VERSION}"
        )
    model_type = payload["model_type"]
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"model file {_name(file)} holds model_type {model_type!r}; known: {sorted(MODEL_TYPES)}"
        )
    model_cls, config_cls = MODEL_TYPES[model_type]
    config = config_cls.from_dict(payload["config"])
    model = model_cls(config)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"model file {_name(file)}: weights do not match its config {config} "
            f"(written by another architecture or edited?): {str(err)[:500]}"
        ) from err
    provenance = payload.get("provenance")
    model.provenance = dict(provenance) if isinstance(provenance, dict) else {}
    return model.to(map_location).eval()


def _name(file: Any) -> str:
    return str(file) if isinstance(file, (str, os.PathLike)) else "<stream>"
