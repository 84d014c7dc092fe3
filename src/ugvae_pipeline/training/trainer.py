"""Training loop for UG-VAE: groups in, trained model and per-epoch history out.

Knows nothing of Kedro. Images arrive as a uint8 array ``[N, C, H, W]`` (possibly a
memory map) and groups as index arrays; pixels are gathered per step, so a group never
round-trips through Python image by image. Datasets that fit are copied to the device once
(uint8) and each epoch's group plan once, so a step makes no host-to-device copy at all.

Data-parallel training (``train.devices > 1``, or a process group set up by ``torchrun``)
shards every step along the groups axis: each process takes whole groups, since a group's
global code needs all of its members. The reparameterisation noise of a step is drawn for
all of its groups, identically on every process, and each keeps its own groups' share; so
N processes with G groups each make exactly the update of one process with N·G groups.

With ``train.checkpoint_every``, rank 0 writes a checkpoint (``training/checkpoint.py``)
every that many epochs; ``train.resume`` continues from it and ends with the weights of an
uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import numpy as np
import pandas as pd
import torch
from torch import distributed as dist
from torch import nn

from ugvae_pipeline.models.elbo import ELBOTerms, annealed_loss
from ugvae_pipeline.models.ugvae import LatentNoise
from ugvae_pipeline.progress import TrainingProgress as _Progress
from ugvae_pipeline.training import checkpoint as ckpt
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


def make_optimizer(params, learning_rate: float, device: torch.device) -> torch.optim.Adam:
    """Adam; the fused implementation (one kernel for all parameters) on CPU and CUDA."""
    return torch.optim.Adam(params, lr=learning_rate, fused=device.type in ("cpu", "cuda"))


class GroupBatcher:
    """Turns index arrays ``[G, B]`` into float pixel tensors ``[G, B, C, H, W]`` in [0, 1].

    An index may be a NumPy array or what :meth:`plan` returned (a device tensor when the
    images are resident on the device).
    """

    def __init__(self, images: np.ndarray, device: torch.device):
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be a uint8 array [N, C, H, W], got {images.dtype} {images.shape}"
            )
        self.images = images
        self.device = device
        self.n_images = images.shape[0]
        self.resident = None
        if images.nbytes <= RESIDENT_BYTES:
            self.resident = torch.from_numpy(np.array(images)).to(device)  # a writable copy in memory

    def plan(self, groups: np.ndarray) -> np.ndarray | torch.Tensor:
        """A group plan ``[n, B]`` moved to where pixels are gathered, in one copy."""
        if self.resident is None:
            return np.asarray(groups)
        return torch.as_tensor(np.ascontiguousarray(groups), dtype=torch.long).to(self.device)

    def __call__(self, index: np.ndarray | torch.Tensor) -> torch.Tensor:
        shape = tuple(index.shape)
        if self.resident is not None:
            flat = torch.as_tensor(index, device=self.device).reshape(-1)
            pixels = self.resident.index_select(0, flat)
        else:
            index = index.cpu().numpy() if isinstance(index, torch.Tensor) else index
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


class _TermAverager:
    """Image-weighted running means of the ELBO terms, kept on the device (no sync per step)."""

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(len(ELBOTerms.NAMES), dtype=torch.float64, device=device)
        self.images = 0

    def add(self, terms: ELBOTerms, n_images: int) -> None:
        values = torch.stack([getattr(terms, name).detach().float() for name in ELBOTerms.NAMES])
        self.sums += values * n_images
        self.images += n_images

    def all_reduce(self) -> None:
        """Sum over the processes of a process group (no-op without one)."""
        if _distributed():
            images = torch.tensor([float(self.images)], dtype=torch.float64, device=self.sums.device)
            both = torch.cat([self.sums, images])
            dist.all_reduce(both)
            self.sums, self.images = both[:-1], int(both[-1].item())

    def means(self) -> dict[str, float]:
        sums = self.sums.cpu().tolist()
        return {name: total / max(self.images, 1) for name, total in zip(ELBOTerms.NAMES, sums)}


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, batcher: GroupBatcher, groups: np.ndarray, groups_per_step: int,
    dtype: torch.dtype | None = None, seed: int | None = None,
) -> dict[str, float]:
    """Negative ELBO per image and its terms on fixed groups ``[n, B]``, in eval mode.

    With ``seed``, the reparameterisation noise is drawn from a generator seeded with it,
    so repeated evaluations (each epoch, any number of processes) use the same noise.
    In a process group, each process evaluates a contiguous share of the groups and the
    result is the mean over all of them.
    """
    was_training = model.training
    model.eval()
    averager = _TermAverager(batcher.device)
    rank, world = _rank_and_world()
    share = np.array_split(np.arange(len(groups)), world)[rank]
    noise = None
    if seed is not None:
        generator = torch.Generator(device=batcher.device).manual_seed(seed)
        noise = LatentNoise.draw(model.config, len(groups), groups.shape[1], generator, batcher.device)
    for start in range(0, len(share), groups_per_step):
        picked = share[start : start + groups_per_step]
        chunk = groups[picked]
        x = batcher(chunk)
        with _autocast(batcher.device, dtype):
            if noise is None:
                terms = model(x).terms
            else:
                terms = model(x, noise[int(picked[0]) : int(picked[-1]) + 1]).terms
        averager.add(terms, chunk.size)
    averager.all_reduce()
    model.train(was_training)
    return averager.means()


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if _distributed() else (0, 1)


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
) -> tuple[nn.Module, pd.DataFrame] | None:
    """Train with Adam on a group plan; return the model (CPU, eval mode) and its history.

    With ``config.devices > 1`` this spawns that many data-parallel processes and returns
    what the first one trained. Called inside an initialised process group (``torchrun``,
    or the spawned processes), it trains this process's share and returns ``None`` on every
    process but rank 0, so only rank 0 writes outputs.

    Args:
        model: a UG-VAE (a module with a ``config`` whose forward takes ``(x, noise)`` and
            returns an object with ``terms``).
        images: uint8 ``[N, C, H, W]``.
        train_groups: ``[epochs, n_groups, B]`` image indices; epoch e uses ``train_groups[e]``.
        heldout_groups: ``[n_heldout, B']`` indices of images not trained on.
        config: training parameters.

    Returns:
        The trained model and a table with one row per epoch: ``train_<term>`` and
        ``heldout_<term>`` per image for every ELBO term, seconds and images per second
        (over all processes).

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
    if config.devices > 1 and not _distributed():
        from ugvae_pipeline.training.distributed import spawn_training

        return spawn_training(model, images, train_groups, heldout_groups, config)
    return _train_process(model, images, train_groups, heldout_groups, config)


def process_device(name: str) -> torch.device:
    """This process's device: in a process group on CUDA, the GPU of its local rank."""
    device = resolve_device(name)
    if device.type == "cuda" and _distributed():
        local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank() % torch.cuda.device_count()))
        device = torch.device("cuda", local_rank)
    return device


def _train_process(
    model: nn.Module,
    images: np.ndarray,
    train_groups: np.ndarray,
    heldout_groups: np.ndarray,
    config: TrainConfig,
) -> tuple[nn.Module, pd.DataFrame] | None:
    rank, world = _rank_and_world()
    device = process_device(config.device)
    dtype = autocast_dtype(config.precision, device)
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
    step_model = torch.compile(train_model) if config.compile else train_model
    eval_model = step_model if world == 1 else model
    batcher = GroupBatcher(images, device)
    optimizer = make_optimizer(model.parameters(), config.learning_rate, device)
    noise_generator = torch.Generator(device=device).manual_seed(config.seed)

    n_groups, group_size = train_groups.shape[1:]
    usable = n_groups - n_groups % world
    if usable == 0:
        raise ValueError(
            f"train_groups has {n_groups} groups per epoch, fewer than train.devices={world}"
        )
    if usable < n_groups and rank == 0:
        log.warning(
            "%d group(s) per epoch left out so that %d processes get equal shares",
            n_groups - usable, world,
        )
    groups_per_step = config.groups_per_step * world  # over all processes
    steps_per_epoch = math.ceil(usable / groups_per_step)
    progress = _Progress(
        config.progress if rank == 0 else "off", steps_per_epoch * config.epochs, config.log_every
    )
    if rank == 0:
        log.info(
            "training on %s%s (%s): %d epochs x %d steps of %d group(s) of %d images",
            device, f" x {world} processes" if world > 1 else "",
            "fp32" if dtype is None else str(dtype).replace("torch.", ""),
            config.epochs, steps_per_epoch, groups_per_step, group_size,
        )
    signature = _run_signature(model, train_groups, heldout_groups, config, groups_per_step, dtype)
    checkpoint_file = ckpt.checkpoint_path(config.checkpoint_dir)
    rows, checkpointed = [], 0  # checkpointed: epochs done in the last checkpoint
    if config.resume:
        rows, checkpointed = _resume(checkpoint_file, signature, model, optimizer, noise_generator)
    done = checkpointed * steps_per_epoch
    try:
        for epoch in range(checkpointed + 1, config.epochs + 1):
            model.train()
            averager = _TermAverager(device)
            step_losses: list[torch.Tensor] = []
            plan = batcher.plan(train_groups[epoch - 1, :usable])  # one copy per epoch
            start = time.perf_counter()
            for step, first in enumerate(range(0, usable, groups_per_step), 1):
                chunk = plan[first : first + groups_per_step]
                share = len(chunk) // world
                mine = slice(rank * share, (rank + 1) * share)
                # noise for every group of the step, the same on every process
                noise = LatentNoise.draw(
                    model.config, len(chunk), group_size, noise_generator, device
                )[mine]
                x = batcher(chunk[mine])
                with _autocast(device, dtype):
                    terms = step_model(x, noise).terms
                optimizer.zero_grad(set_to_none=True)
                annealed_loss(terms, _global_kl_weight(config, done, steps_per_epoch)).backward()
                optimizer.step()
                averager.add(terms, share * group_size)
                step_losses.append(terms.loss.detach())
                done += 1
                shown = None
                if done % config.log_every == 0 or step == steps_per_epoch:
                    shown = _check_finite(step_losses, epoch, step)
                progress.step(done, epoch, shown)
            averager.all_reduce()
            seconds = time.perf_counter() - start
            row = {"epoch": epoch}
            row.update({f"train_{k}": v for k, v in averager.means().items()})
            heldout = evaluate_loss(
                eval_model, batcher, heldout_groups, config.groups_per_step, dtype, seed=config.seed
            )
            row.update({f"heldout_{k}": v for k, v in heldout.items()})
            row["seconds"] = seconds
            row["images_per_second"] = averager.images / seconds
            rows.append(row)
            if rank == 0:
                log.info(
                    "epoch %d/%d: train loss %.3f, held-out loss %.3f per image (%.1fs, %.0f images/s)",
                    epoch, config.epochs, row["train_loss"], row["heldout_loss"], seconds,
                    row["images_per_second"],
                )
            if rank == 0 and config.checkpoint_every and epoch % config.checkpoint_every == 0:
                ckpt.save_checkpoint(checkpoint_file, {
                    "signature": signature, "epoch": epoch, "history": rows,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "rng": ckpt.capture_rng_states(noise_generator),
                })
                checkpointed = epoch
    except BaseException:
        if rank == 0 and checkpointed:
            log.error(
                "training stopped after epoch %d; its checkpoint %s is intact: rerun with "
                "train.resume=true to continue from it", checkpointed, checkpoint_file,
            )
        raise
    finally:
        progress.close()
    if rank != 0:
        return None
    model = model.cpu().to(memory_format=torch.contiguous_format).eval()
    return model, pd.DataFrame(rows)


def _run_signature(
    model: nn.Module, train_groups: np.ndarray, heldout_groups: np.ndarray, config: TrainConfig,
    groups_per_step: int, dtype: torch.dtype | None,
) -> dict:
    """What a resumed run must share with the checkpoint to continue the same run exactly."""
    return {
        "model": model.config.to_dict(),
        "seed": config.seed,
        "learning_rate": config.learning_rate,
        "groups_per_step": groups_per_step,
        "global_kl_warmup_epochs": config.global_kl_warmup_epochs,
        "precision": "fp32" if dtype is None else str(dtype).replace("torch.", ""),
        "train_groups": ckpt.array_digest(train_groups),
        "heldout_groups": ckpt.array_digest(heldout_groups),
    }


def _resume(
    path, signature: dict, model: nn.Module, optimizer: torch.optim.Optimizer, noise_generator: torch.Generator
) -> tuple[list[dict], int]:
    """Load the checkpoint at ``path`` into the model, optimizer and generators.

    Returns the history so far and the epochs done; ``([], 0)`` when there is no checkpoint.
    """
    if not path.exists():
        log.info("train.resume: no checkpoint at %s, training from epoch 1", path)
        return [], 0
    state = ckpt.load_checkpoint(path)
    ckpt.check_signature(path, state["signature"], signature)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    ckpt.restore_rng_states(state["rng"], noise_generator)
    log.info("train.resume: continuing from %s after epoch %d", path, state["epoch"])
    return list(state["history"]), int(state["epoch"])


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
