"""Training loop for UG-VAE: groups in, trained model and per-epoch history out.

Knows nothing of Kedro. Images arrive as a uint8 array ``[N, C, H, W]`` (possibly a
memory map) and groups as index arrays; pixels are gathered per step, so a group never
round-trips through Python image by image.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from ugvae_pipeline.models.elbo import ELBOTerms, annealed_loss
from ugvae_pipeline.progress import TrainingProgress as _Progress
from ugvae_pipeline.training.config import TrainConfig

log = logging.getLogger(__name__)

# Datasets up to this size are copied to the device once as uint8 and indexed there.
RESIDENT_BYTES = 2 * 1024**3


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA if available, else CPU; an unavailable explicit device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name!r} but CUDA is not available here; use 'auto' or 'cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"train.device={name!r} but MPS is not available here; use 'auto' or 'cpu'")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting, or None for full fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


class GroupBatcher:
    """Turns index arrays ``[G, B]`` into float pixel tensors ``[G, B, C, H, W]`` in [0, 1]."""

    def __init__(self, images: np.ndarray, device: torch.device, channels_last: bool = False):
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be a uint8 array [N, C, H, W], got {images.dtype} {images.shape}"
            )
        self.images = images
        self.device = device
        self.n_images = images.shape[0]
        self.resident = None
        if images.nbytes <= RESIDENT_BYTES:
            self.resident = torch.from_numpy(np.ascontiguousarray(images)).to(device)

    def __call__(self, index: np.ndarray) -> torch.Tensor:
        shape = index.shape
        if self.resident is not None:
            flat = torch.as_tensor(index.reshape(-1), device=self.device)
            pixels = self.resident.index_select(0, flat)
        else:
            pixels = torch.from_numpy(self.images[np.asarray(index).reshape(-1)])
            if self.device.type == "cuda":
                pixels = pixels.pin_memory().to(self.device, non_blocking=True)
        pixels = pixels.view(*shape, *pixels.shape[1:])
        return pixels.float().div_(255.0)


def check_groups(groups: np.ndarray, n_images: int, name: str, ndim: int) -> None:
    if groups.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {groups.shape}")
    if groups.size == 0:
        raise ValueError(f"{name} is empty (shape {groups.shape}): no groups to train or evaluate on")
    if groups.min() < 0 or groups.max() >= n_images:
        raise ValueError(
            f"{name} indexes images outside [0, {n_images}): min {groups.min()}, max {groups.max()}"
        )


def _chunks(groups: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(groups), size):
        yield groups[start : start + size]


class _TermAverager:
    """Image-weighted running means of the ELBO terms, kept on the device (no sync per step)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.images = 0

    def add(self, terms: ELBOTerms, n_images: int) -> None:
        for name in ELBOTerms.NAMES:
            value = getattr(terms, name).detach().float() * n_images
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.images += n_images

    def means(self) -> dict[str, float]:
        return {name: float(total) / self.images for name, total in self.sums.items()}


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, batcher: GroupBatcher, groups: np.ndarray, groups_per_step: int,
    dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Negative ELBO per image and its terms on fixed groups ``[n, B]``, in eval mode."""
    was_training = model.training
    model.eval()
    averager = _TermAverager()
    for chunk in _chunks(groups, groups_per_step):
        x = batcher(chunk)
        with _autocast(batcher.device, dtype):
            terms = model(x).terms
        averager.add(terms, chunk.size)
    model.train(was_training)
    return averager.means()


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def train(
    model: nn.Module,
    images: np.ndarray,
    train_groups: np.ndarray,
    heldout_groups: np.ndarray,
    config: TrainConfig,
) -> tuple[nn.Module, pd.DataFrame]:
    """Train with Adam on a group plan; return the model (CPU, eval mode) and its history.

    Args:
        model: a UG-VAE (or any module whose forward returns an object with ``terms``).
        images: uint8 ``[N, C, H, W]``.
        train_groups: ``[epochs, n_groups, B]`` image indices; epoch e uses ``train_groups[e]``.
        heldout_groups: ``[n_heldout, B']`` indices of images not trained on.
        config: training parameters.

    Returns:
        The trained model and a table with one row per epoch: ``train_<term>`` and
        ``heldout_<term>`` per image for every ELBO term, seconds and images per second.

    Raises:
        FloatingPointError: a non-finite loss, naming the epoch and step.
    """
    check_groups(train_groups, len(images), "train_groups", ndim=3)
    check_groups(heldout_groups, len(images), "heldout_groups", ndim=2)
    if train_groups.shape[0] != config.epochs:
        raise ValueError(
            f"train_groups holds {train_groups.shape[0]} epochs of groups but train.epochs="
            f"{config.epochs}; rebuild the groups with the same train.epochs"
        )
    device = resolve_device(config.device)
    dtype = autocast_dtype(config.precision, device)
    model = model.to(device)
    if device.type == "cuda" and getattr(model.config, "architecture", "") == "conv64":
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if config.compile else model
    batcher = GroupBatcher(images, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)

    n_groups = train_groups.shape[1]
    steps_per_epoch = math.ceil(n_groups / config.groups_per_step)
    progress = _Progress(config.progress, steps_per_epoch * config.epochs, config.log_every)
    log.info(
        "training on %s (%s): %d epochs x %d steps of %d group(s) of %d images",
        device, "fp32" if dtype is None else str(dtype).replace("torch.", ""),
        config.epochs, steps_per_epoch, config.groups_per_step, train_groups.shape[2],
    )
    rows = []
    done = 0
    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            averager = _TermAverager()
            step_losses: list[torch.Tensor] = []
            start = time.perf_counter()
            for step, chunk in enumerate(_chunks(train_groups[epoch - 1], config.groups_per_step), 1):
                x = batcher(chunk)
                with _autocast(device, dtype):
                    terms = step_model(x).terms
                optimizer.zero_grad(set_to_none=True)
                annealed_loss(terms, _global_kl_weight(config, done, steps_per_epoch)).backward()
                optimizer.step()
                averager.add(terms, chunk.size)
                step_losses.append(terms.loss.detach())
                done += 1
                shown = None
                if done % config.log_every == 0 or step == steps_per_epoch:
                    shown = _check_finite(step_losses, epoch, step)
                progress.step(done, epoch, shown)
            seconds = time.perf_counter() - start
            row = {"epoch": epoch}
            row.update({f"train_{k}": v for k, v in averager.means().items()})
            heldout = evaluate_loss(step_model, batcher, heldout_groups, config.groups_per_step, dtype)
            row.update({f"heldout_{k}": v for k, v in heldout.items()})
            row["seconds"] = seconds
            row["images_per_second"] = averager.images / seconds
            rows.append(row)
            log.info(
                "epoch %d/%d: train loss %.3f, held-out loss %.3f per image (%.1fs, %.0f images/s)",
                epoch, config.epochs, row["train_loss"], row["heldout_loss"], seconds,
                row["images_per_second"],
            )
    finally:
        progress.close()
    return model.cpu().eval(), pd.DataFrame(rows)


def _global_kl_weight(config: TrainConfig, steps_done: int, steps_per_epoch: int) -> float:
    """Weight of the global KL at a step: linear 0 → 1 over ``global_kl_warmup_epochs``."""
    if config.global_kl_warmup_epochs <= 0:
        return 1.0
    return min(1.0, steps_done / (config.global_kl_warmup_epochs * steps_per_epoch))


def _check_finite(step_losses: list[torch.Tensor], epoch: int, last_step: int) -> float:
    """Raise naming the first step whose loss was not finite; return the latest loss."""
    losses = torch.stack(step_losses).cpu()
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        first = last_step - len(step_losses) + 1 + int(bad[0])
        raise FloatingPointError(
            f"loss became {float(losses[bad[0]].item())} at epoch {epoch}, step {first}; "
            "lower train.learning_rate, check the input images are in [0, 255], or raise model.var_x"
        )
    step_losses.clear()
    return float(losses[-1])
