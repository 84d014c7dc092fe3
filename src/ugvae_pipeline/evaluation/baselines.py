"""Pooling baselines a global code should beat: group summaries that need no global latent."""

from __future__ import annotations

import numpy as np


def mean_local_code(local_codes: np.ndarray) -> np.ndarray:
    """Mean of the local codes of each group: ``[n, B, dim_z]`` → ``[n, dim_z]``."""
    return np.asarray(local_codes).mean(1)


def mean_image(images: np.ndarray, groups: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Mean image of each group, flattened: uint8 ``[N, C, H, W]``, ``[n, B]`` → ``[n, C·H·W]`` in [0, 1]."""
    out = []
    for start in range(0, len(groups), chunk):
        index = np.asarray(groups[start : start + chunk])
        out.append(images[index].reshape(*index.shape, -1).astype(np.float32).mean(1) / 255.0)
    return np.concatenate(out)


def label_histogram(labels: np.ndarray, groups: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Oracle: normalised histogram of the true labels of each group, ``[n, n_classes]``."""
    group_labels = np.asarray(labels)[np.asarray(groups)]  # [n, B]
    counts = (group_labels[..., None] == np.arange(n_classes)).sum(1)
    return counts / group_labels.shape[1]
