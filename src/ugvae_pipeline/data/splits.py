"""Per-image metadata tables and train / validation / test splits, shared by every image source.

Three disjoint splits: models train on ``train`` images; the held-out loss, early stopping and
every choice of model options use ``validation`` images; evaluation groups and every reported
score use ``test`` images only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "validation", "test")


def check_fractions(validation_fraction: float, test_fraction: float, prefix: str = "data") -> None:
    """Both fractions in (0, 1) and leaving training images: raise naming the parameters."""
    for key, value in (
        ("validation_fraction", validation_fraction),
        ("test_fraction", test_fraction),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ValueError(f"{prefix}.{key} must be a number in (0, 1), got {value!r}")
    if validation_fraction + test_fraction >= 1:
        raise ValueError(
            f"{prefix}.validation_fraction + {prefix}.test_fraction must be below 1 (the rest trains), "
            f"got {validation_fraction} + {test_fraction}"
        )


def stratified_split(
    labels: np.ndarray, validation_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """``split`` column ``[N]``: per label, ``round(n·test_fraction)`` images are ``test`` and
    ``round(n·validation_fraction)`` ``validation``, chosen by ``seed``; the rest ``train``."""
    check_fractions(validation_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), "train", dtype=object)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(members) * test_fraction))
        n_validation = int(round(len(members) * validation_fraction))
        split[members[:n_test]] = "test"
        split[members[n_test : n_test + n_validation]] = "validation"
    return split


def random_split(
    n_images: int, validation_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """``split`` column ``[N]`` for unlabelled images: the fractions drawn at random by ``seed``."""
    return stratified_split(
        np.zeros(n_images, dtype=np.int64), validation_fraction, test_fraction, seed
    )


def image_table(labels: np.ndarray, split: np.ndarray, source: str, **columns) -> pd.DataFrame:
    """One row per image: ``image_id``, ``label``, ``split``, ``source``, then ``columns``."""
    table = pd.DataFrame(
        {
            "image_id": np.arange(len(labels), dtype=np.int64),
            "label": np.asarray(labels).astype(np.int64),
            "split": pd.Series(split, dtype="string"),
            "source": pd.Series([source] * len(labels), dtype="string"),
        }
    )
    for name, values in columns.items():
        table[name] = values.reset_index(drop=True) if isinstance(values, pd.Series) else values
    return table
