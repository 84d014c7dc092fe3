"""Where a training process runs: its device, its place in a process group, its precision, and
the model and optimizer set up for that device."""

from __future__ import annotations

import contextlib
import os

import torch
from torch import distributed as dist
from torch import nn


def in_process_group() -> bool:
    """Whether this process is one of a process group (``torchrun`` or spawned workers)."""
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes; ``(0, 1)`` outside a process group."""
    return (dist.get_rank(), dist.get_world_size()) if in_process_group() else (0, 1)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA if available, else CPU; an unavailable explicit device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"train.device={name!r} but CUDA is not available here; use 'auto' or 'cpu'"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(
            f"train.device={name!r} but MPS is not available here; use 'auto' or 'cpu'"
        )
    return device


def process_device(name: str) -> torch.device:
    """This process's device: in a process group on CUDA, the GPU of its local rank."""
    device = resolve_device(name)
    if device.type == "cuda" and in_process_group():
        local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank() % torch.cuda.device_count()))
        device = torch.device("cuda", local_rank)
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


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32`` for no autocast, else the dtype's name (``bfloat16``)."""
    return "fp32" if dtype is None else str(dtype).replace("torch.", "")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to ``dtype`` on ``device``; a context that does nothing for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_optimizer(params, learning_rate: float, device: torch.device) -> torch.optim.Adam:
    """Adam; the fused implementation (one kernel for all parameters) on CPU and CUDA."""
    return torch.optim.Adam(params, lr=learning_rate, fused=device.type in ("cpu", "cuda"))


def place_model(
    model: nn.Module, device: torch.device, world: int, compile: bool
) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Move ``model`` to ``device`` and wrap it for training.

    Returns ``(model, step_model, eval_model)``: the module whose weights are trained, what a
    training step calls (``DistributedDataParallel`` in a process group of several, then
    ``torch.compile`` with ``compile``) and what the held-out evaluation calls (the step model
    in a single process; the plain module in a process group, each process evaluating a share).
    """
    model = model.to(device)
    if device.type == "cuda" and getattr(model.config, "architecture", "") == "conv64":
        model = model.to(memory_format=torch.channels_last)
    train_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Gradients are averaged over processes; each holds the same number of images, so
        # the average of per-process per-image means is the per-image mean of the whole step.
        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    step_model = torch.compile(train_model) if compile else train_model
    eval_model = step_model if world == 1 else model
    return model, step_model, eval_model
