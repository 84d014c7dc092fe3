"""Data-parallel training: DistributedDataParallel over whole groups.

Two ways to launch it:

- from the training node, with ``train.devices: N`` (N > 1): :func:`spawn_training` starts N
  worker processes with ``torch.multiprocessing`` (NCCL on CUDA devices 0..N-1, Gloo on the
  CPU) and returns what rank 0 trained, so only the parent process writes outputs;
- with ``torchrun``, which starts the processes itself::

      python -m torch.distributed.run --nproc_per_node=2 -m ugvae_pipeline.training.distributed \\
          [--env local] [--params "train.epochs=2"]

  Every process loads the images, the group plan and the parameters from the project's Data
  Catalog (run it from the project root, after the ingestion and grouping pipelines); rank 0
  alone saves ``trained_model`` and ``training_history`` back to the catalog.

Each step, every process takes ``train.groups_per_step`` whole groups (a group is never split:
its global code needs all of its members) and draws the reparameterisation noise of all the
step's groups from the same seeded generator, keeping its own share; gradients are averaged.
N processes therefore make the update of one process with N × groups_per_step groups per
step. Exception: BatchNorm layers (``conv64``) normalise with statistics of each process's
own images, not of the whole step.
"""

from __future__ import annotations

import argparse
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
from ugvae_pipeline.training.trainer import resolve_device, train

log = logging.getLogger(__name__)


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def spawn_training(
    model: nn.Module,
    images: np.ndarray,
    train_groups: np.ndarray,
    heldout_groups: np.ndarray,
    config: TrainConfig,
) -> tuple[nn.Module, pd.DataFrame]:
    """Train in ``config.devices`` spawned processes; return rank 0's model and history."""
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
            args=(world, tmp, model.cpu(), _shareable(images), train_groups, heldout_groups, config),
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


def _worker(rank, world, tmp, model, images, train_groups, heldout_groups, config) -> None:
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
        result = train(model, _unshare(images), train_groups, heldout_groups, config)
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


def main(argv: list[str] | None = None) -> None:
    """``torchrun`` entry point: train on the Data Catalog's datasets, rank 0 saves."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from ugvae_pipeline.pipelines.training.nodes import train_model

    parser = argparse.ArgumentParser(prog="python -m ugvae_pipeline.training.distributed")
    parser.add_argument("--env", default=None, help="Kedro configuration environment")
    parser.add_argument(
        "--params", default="", help='runtime parameters as in kedro run, e.g. "train.epochs=2"'
    )
    args = parser.parse_args(argv)
    runtime_params = {}
    for item in filter(None, (p.strip() for p in args.params.split(","))):
        key, _, value = item.partition("=")
        import yaml

        runtime_params[key.strip()] = yaml.safe_load(value)

    logging.basicConfig(level=logging.INFO)
    project = Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=args.env, runtime_params=runtime_params) as session:
        catalog = session.load_context().catalog
        train_params = catalog.load("params:train")
        device = resolve_device(train_params.get("device", "auto"))
        dist.init_process_group(backend_for(device))  # rank and world from torchrun's env
        try:
            result = train_model(
                catalog.load("images"),
                catalog.load("train_groups"),
                catalog.load("heldout_groups"),
                catalog.load("params:model"),
                train_params,
            )
            if dist.get_rank() == 0:
                model, history = result
                catalog.save("trained_model", model)
                catalog.save("training_history", history)
                log.info("rank 0 saved trained_model and training_history")
            dist.barrier()  # as in _worker: nobody tears down while a peer is still working
        finally:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
