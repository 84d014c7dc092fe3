"""Pooling baselines a global code should beat: group summaries that need no global latent."""

from __future__ import annotations

import numpy as np


def mean_local_code(local_codes: np.ndarray) -> np.ndarray:
    """Mean of the local codes of each group: ``[n, B, dim_z]`` → ``[n, dim_z]``."""
    return np.asarray(local_codes).mean(1)


def mean_image(
    images: np.ndarray, groups: np.ndarray, chunk: int | None = None, chunk_bytes: int = 1 << 25
) -> np.ndarray:
    """Mean image of each group, flattened: uint8 ``[N, C, H, W]``, ``[n, B]`` → float32 ``[n, C·H·W]`` in [0, 1].

    Memory-bounded: groups are gathered ``chunk`` at a time (default: as many as fit in
    ``chunk_bytes`` of uint8 pixels, at least one) and averaged in float32 without a float
    copy of the chunk, so the peak is about the uint8 chunk plus the ``[n, C·H·W]`` output.
    """
    groups = np.asarray(groups)
    n, b = groups.shape
    size = int(np.prod(images.shape[1:]))
    if chunk is None:
        chunk = max(1, chunk_bytes // max(1, b * size * images.itemsize))
    out = np.empty((n, size), dtype=np.float32)
    for start in range(0, n, chunk):
        index = groups[start : start + chunk]
        out[start : start + len(index)] = (
            images[index].reshape(*index.shape, -1).mean(1, dtype=np.float32)
        )
    out /= 255.0
    return out


def label_histogram(labels: np.ndarray, groups: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Oracle: normalised histogram of the true labels of each group, ``[n, n_classes]``."""
    group_labels = np.asarray(labels)[np.asarray(groups)]  # [n, B]
    counts = (group_labels[..., None] == np.arange(n_classes)).sum(1)
    return counts / group_labels.shape[1]
