"""Per-image metadata tables and train/held-out splits, shared by every image source."""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "heldout")


def _check_fraction(heldout_fraction: float) -> None:
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"data.heldout_fraction must be in (0, 1), got {heldout_fraction!r}")


def stratified_split(labels: np.ndarray, heldout_fraction: float, seed: int) -> np.ndarray:
    """``split`` column ``[N]``: a fixed fraction of each label held out, chosen by ``seed``."""
    _check_fraction(heldout_fraction)
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), "train", dtype=object)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_heldout = int(round(len(members) * heldout_fraction))
        split[rng.choice(members, size=n_heldout, replace=False)] = "heldout"
    return split


def random_split(n_images: int, heldout_fraction: float, seed: int) -> np.ndarray:
    """``split`` column ``[N]`` for unlabelled images: ``round(N * fraction)`` held out at random."""
    return stratified_split(np.zeros(n_images, dtype=np.int64), heldout_fraction, seed)


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
