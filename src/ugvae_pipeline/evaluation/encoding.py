"""Encode evaluation groups with a trained model, in chunks, with posterior means."""

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
