"""Data-parallel training: DistributedDataParallel over whole groups.

Two ways to launch it:

- :func:`spawn_training` starts N worker processes with ``torch.multiprocessing`` (NCCL on CUDA
  devices 0..N-1, Gloo on the CPU) and returns what rank 0 trained, so only the parent process
  writes outputs (the training node calls it when ``train.devices`` > 1);
- ``torchrun`` starts the processes itself and each calls :func:`~ugvae_pipeline.training.trainer.train`
  inside the process group (the Kedro entry point is ``ugvae_pipeline.pipelines.training.torchrun``).

Each step, every process takes ``train.groups_per_step`` whole groups (a group is never split:
its global code needs all of its members) and draws the reparameterisation noise of all the
step's groups from the same seeded generator, keeping its own share; gradients are averaged.
N processes therefore make the update of one process with N × groups_per_step groups per
step. Exception: BatchNorm layers (``conv64``) normalise with statistics of each process's
own images, not of the whole step.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import distributed as dist
from torch import multiprocessing as mp
from torch import nn

from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.device import resolve_device
from ugvae_pipeline.training.trainer import train

log = logging.getLogger(__name__)


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def spawn_training(
    model: nn.Module,
    images: np.ndarray,
    train_groups: np.ndarray,
    heldout_groups: np.ndarray,
    config: TrainConfig,
    run_id: str | None = None,
    monitor=None,
    regroup=None,
) -> tuple[nn.Module, pd.DataFrame]:
    """Train in ``config.devices`` spawned processes; return rank 0's model and history
    (``run_id``, ``monitor``, ``regroup``: as for :func:`~ugvae_pipeline.training.trainer.train`;
    the monitor scores on rank 0, whose clusters every process trains on)."""
    world = config.devices
    device = resolve_device(config.device)
    if device.type == "cuda" and torch.cuda.device_count() < world:
        raise ValueError(
            f"train.devices={world} but only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    if device.type not in ("cuda", "cpu"):
        raise ValueError(f"train.devices > 1 needs CUDA or CPU devices, not {device.type}")
    with tempfile.TemporaryDirectory(prefix="ugvae-ddp-") as tmp:
        mp.spawn(
            _worker,
            args=(
                world,
                tmp,
                model.cpu(),
                _shareable(images),
                train_groups,
                heldout_groups,
                config,
                run_id,
                monitor,
                regroup,
            ),
            nprocs=world,
            join=True,
        )
        result = torch.load(Path(tmp) / "result.pt", weights_only=True)
    model.load_state_dict(result["state_dict"])
    return model.eval(), pd.DataFrame(result["history"])


def _shareable(images: np.ndarray):
    """Images passed to the workers without copying them through a pipe.

    A memory map is reopened by file name; an in-memory array becomes a tensor in shared
    memory (torch.multiprocessing passes tensors by handle).
    """
    if isinstance(images, np.memmap) and images.filename is not None:
        return ("memmap", str(images.filename), images.dtype.str, images.shape, images.offset)
    return torch.from_numpy(np.ascontiguousarray(images))


def _unshare(images) -> np.ndarray:
    if isinstance(images, tuple) and images[0] == "memmap":
        _, filename, dtype, shape, offset = images
        return np.memmap(filename, dtype=np.dtype(dtype), mode="r", shape=shape, offset=offset)
    return images.numpy()


def _worker(
    rank, world, tmp, model, images, train_groups, heldout_groups, config, run_id, monitor, regroup
) -> None:
    device = resolve_device(config.device)
    if device.type == "cuda":
        torch.cuda.set_device(rank)
    else:
        # the processes share the cores; without this each would start one thread per core
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    # torch.multiprocessing passed the parameters in shared memory: every worker would step
    # the same storage. Each process needs its own copy (DDP keeps the copies in sync).
    model = copy.deepcopy(model)
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group(
        backend_for(device), init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world
    )
    try:
        result = train(
            model,
            _unshare(images),
            train_groups,
            heldout_groups,
            config,
            run_id,
            monitor if rank == 0 else None,
            regroup,
        )
        if rank == 0:
            trained, history = result
            torch.save(
                {"state_dict": trained.state_dict(), "history": history.to_dict(orient="list")},
                Path(tmp) / "result.pt",
            )
        # every rank done before any tears its process group down: Gloo can abort a process
        # ("terminate called without an active exception") whose peer left first
        dist.barrier()
    finally:
        dist.destroy_process_group()
