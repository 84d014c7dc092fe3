"""Parameter groups checked against the typed configs they build."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def dataclass_kwargs(cls: type, values: dict[str, Any], group: str) -> dict[str, Any]:
    """``values`` as keyword arguments of the dataclass ``cls``.

    Unknown keys are an error naming the valid ones (``group`` is the parameter group, e.g.
    ``model``); an integer given for a ``float`` field (``var_x: 1``) becomes a float.
    """
    valid = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(valid)
    if unknown:
        raise ValueError(
            f"unknown {group} parameter(s) {sorted(unknown)}; valid names are {sorted(valid)}"
        )
    kwargs = dict(values)
    for name, value in values.items():
        if (
            valid[name].type in ("float", float)
            and isinstance(value, int)
            and not isinstance(value, bool)
        ):
            kwargs[name] = float(value)
    return kwargs
