"""Encode groups with a trained model, in chunks, with posterior means: groups of one size
(the evaluation groups) or of any sizes (one's own groups, the ``encode`` pipeline)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ugvae_pipeline.progress import Progress

log = logging.getLogger(__name__)


@dataclass
class GroupCodes:
    """Codes of n groups of B images (NumPy, float32).

    Attributes:
        global_code: μ_β, ``[n, dim_beta]``.
        global_var: diagonal of Σ_β, ``[n, dim_beta]``.
        local_code: μ_z, ``[n, B, dim_z]``.
        mixture_probs: π, ``[n, B, K]``.
    """

    global_code: np.ndarray
    global_var: np.ndarray
    local_code: np.ndarray
    mixture_probs: np.ndarray


def encode_groups(
    model: torch.nn.Module,
    images: np.ndarray,
    groups: np.ndarray,
    chunk: int = 32,
    progress: str = "auto",
) -> GroupCodes:
    """Encode groups ``[n, B]`` of uint8 images ``[N, C, H, W]`` with ``model.encode``.

    Runs in eval mode without gradients on the model's device, ``chunk`` groups at a time;
    ``progress`` is a :class:`~ugvae_pipeline.progress.Progress` mode (``auto``, ``bar``,
    ``log``, ``off``).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("gm", "gv", "lm", "mp")}
    with torch.no_grad(), Progress(len(groups), "extract", "groups", progress, logger=log) as bar:
        for start in range(0, len(groups), chunk):
            index = np.asarray(groups[start : start + chunk])
            x = torch.from_numpy(images[index.reshape(-1)]).to(device).float().div_(255.0)
            x = x.view(*index.shape, *images.shape[1:])
            enc = model.encode(x)
            parts["gm"].append(enc.global_mean.float().cpu().numpy())
            parts["gv"].append(enc.global_var.float().cpu().numpy())
            parts["lm"].append(enc.local_mean.float().cpu().numpy())
            parts["mp"].append(enc.mixture_probs.float().cpu().numpy())
            bar.update(len(index))
    model.train(was_training)
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return GroupCodes(cat["gm"], cat["gv"], cat["lm"], cat["mp"])


@dataclass
class RaggedGroupCodes:
    """Codes of n groups of any sizes holding N images in all (NumPy, float32).

    Attributes:
        global_code: μ_β, ``[n, dim_beta]``.
        global_var: diagonal of Σ_β, ``[n, dim_beta]``.
        local_code: μ_z, ``[N, dim_z]``, the groups' images one after another.
        mixture_probs: π, ``[N, K]``.
    """

    global_code: np.ndarray
    global_var: np.ndarray
    local_code: np.ndarray
    mixture_probs: np.ndarray


def encode_groups_of_any_size(
    model: torch.nn.Module,
    images: np.ndarray,
    sizes: np.ndarray,
    chunk: int = 32,
    progress: str = "auto",
) -> RaggedGroupCodes:
    """Encode groups of any sizes: ``images`` uint8 ``[N, C, H, W]`` hold the groups one after
    another, ``sizes[i]`` images for group i.

    Each group's posterior q(β | X) is the product of the factors of its own images only:
    groups of one size are encoded together with :func:`encode_groups`, up to ``chunk`` of
    them at a time, never padded.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if sizes.ndim != 1 or not len(sizes) or (sizes < 1).any() or sizes.sum() != len(images):
        raise ValueError(
            f"group sizes must be >= 1 and add up to the {len(images)} images, got {sizes}"
        )
    starts = np.cumsum(sizes) - sizes
    out: dict[str, np.ndarray] = {}
    with Progress(len(sizes), "encode", "groups", progress, logger=log) as bar:
        for size in np.unique(sizes):
            members = np.flatnonzero(sizes == size)
            for first in range(0, len(members), chunk):
                batch = members[first : first + chunk]
                index = starts[batch, None] + np.arange(size)  # [n_batch, size]
                codes = encode_groups(model, images, index, chunk=len(batch), progress="off")
                rows = index.reshape(-1)
                parts = {
                    "global_code": (batch, codes.global_code, len(sizes)),
                    "global_var": (batch, codes.global_var, len(sizes)),
                    "local_code": (rows, codes.local_code.reshape(len(rows), -1), len(images)),
                    "mixture_probs": (
                        rows,
                        codes.mixture_probs.reshape(len(rows), -1),
                        len(images),
                    ),
                }
                for name, (at, values, total) in parts.items():
                    if name not in out:
                        out[name] = np.empty((total, values.shape[-1]), dtype=np.float32)
                    out[name][at] = values
                bar.update(len(batch))
    return RaggedGroupCodes(**out)
