"""Checks of the ``data:``, ``groups:``, ``extract:`` and ``evaluate:`` parameter groups.

Run by the parameter validation hook before any node, so a value like
``groups.heldout.group_size=-1``, ``data.heldout_fraction="0.2"``, an unknown
``data.source`` or strategy, or an interpolation between group types the evaluation groups
will not have, stops the run at once, naming the parameter, instead of failing deep inside
NumPy or after training. Types and ranges are checked by key name.
"""

from __future__ import annotations

from typing import Any

from ugvae_pipeline.data.sources import check_source_name
from ugvae_pipeline.data.strategies import check_interpolation_types, check_strategy_names
from ugvae_pipeline.progress import progress_mode

COUNTS = ("n_groups", "group_size", "groups_per_series", "n_numbers", "image_size", "groups_per_chunk")  # >= 1
OPTIONAL_COUNTS = ("limit", "crop_size")  # integers >= 1, or null
SEEDS = ("seed", "split_seed")  # integers >= 0
FLAGS = ("skip_bad_images", "download", "exclusive")  # true / false
ZERO_ALLOWED = {"groups.evaluation.random.n_groups"}  # no random reference groups


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(name: str, key: str, value: Any) -> None:
    if key in COUNTS or (key in OPTIONAL_COUNTS and value is not None):
        low = 0 if name in ZERO_ALLOWED else 1
        if not _is_int(value) or value < low:
            nullable = " or null" if key in OPTIONAL_COUNTS else ""
            raise ValueError(f"{name} must be an integer >= {low}{nullable}, got {value!r}")
    elif key in SEEDS and (not _is_int(value) or value < 0):
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    elif key in FLAGS and not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    elif key == "heldout_fraction" and (not _is_number(value) or not 0 < value < 1):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    elif key == "p" and (not _is_number(value) or not 0 <= value <= 1):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    elif key == "channels" and value not in (1, 3):
        raise ValueError(f"{name} must be 1 (grayscale) or 3 (RGB), got {value!r}")
    elif key == "progress":
        progress_mode(value, name)


def check_parameters(group: str, params: Any, prefix: str | None = None) -> None:
    """Check every known key of a parameter group (nested dicts included); raise naming it."""
    prefix = prefix or group
    if not isinstance(params, dict):
        raise ValueError(f"{prefix} must be a mapping of parameters, got {params!r}")
    for key, value in params.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            check_parameters(group, value, name)
        else:
            _check(name, key, value)


def check_data_parameters(params: dict) -> None:
    check_parameters("data", params)
    check_source_name(params)


def check_groups_parameters(params: dict) -> None:
    check_parameters("groups", params)
    check_strategy_names(params)


def check_extract_parameters(params: dict) -> None:
    check_parameters("extract", params)


def check_evaluate_parameters(params: dict, groups_params: dict) -> None:
    """The interpolation's group types against the evaluation groups ``groups_params`` will build."""
    check_interpolation_types(params, groups_params)
