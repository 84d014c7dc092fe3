"""From group plans to pixel batches: checking index arrays, cutting an epoch into steps shared
among the processes, and gathering each step's pixels where the model runs.

Images arrive as a uint8 array ``[N, C, H, W]`` (possibly a memory map) and groups as index
arrays; pixels are gathered per step, so a group never round-trips through Python image by
image. Datasets that fit are copied to the device once (uint8) and each epoch's group plan
once, so a step makes no host-to-device copy at all; larger ones are copied per step, from
pinned memory on CUDA.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

# Datasets up to this size are copied to the device once as uint8 and indexed there.
RESIDENT_BYTES = 2 * 1024**3


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
            self.resident = torch.from_numpy(np.array(images)).to(
                device
            )  # a writable copy in memory

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
        raise ValueError(
            f"{name} is empty (shape {groups.shape}): no groups to train or evaluate on"
        )
    if groups.min() < 0 or groups.max() >= n_images:
        raise ValueError(
            f"{name} indexes images outside [0, {n_images}): min {groups.min()}, max {groups.max()}"
        )


@dataclass(frozen=True)
class StepLayout:
    """How an epoch's groups are cut into steps and shared among the processes.

    A process takes whole groups, since a group's global code needs all of its members: a
    step holds ``groups_per_step`` groups over all processes and process ``rank`` takes the
    ``rank``-th of ``world`` equal shares of them.
    """

    rank: int
    world: int
    usable: int  # groups of each epoch trained on: a multiple of ``world``
    group_size: int
    groups_per_step: int  # over all processes
    steps_per_epoch: int

    def step_starts(self) -> range:
        """The position of each step's first group in an epoch's plan."""
        return range(0, self.usable, self.groups_per_step)

    def share(self, n_groups: int) -> slice:
        """This process's groups among the ``n_groups`` of a step."""
        share = n_groups // self.world
        return slice(self.rank * share, (self.rank + 1) * share)


def step_layout(
    train_groups: np.ndarray, groups_per_step: int, rank: int, world: int
) -> StepLayout:
    """The steps of a plan ``[epochs, n_groups, B]`` with ``groups_per_step`` groups per process.

    Groups that would leave the processes unequal shares are left out of every epoch.
    """
    n_groups, group_size = train_groups.shape[1:]
    usable = n_groups - n_groups % world
    if usable == 0:
        raise ValueError(
            f"train_groups has {n_groups} groups per epoch, fewer than train.devices={world}"
        )
    if usable < n_groups and rank == 0:
        log.warning(
            "%d group(s) per epoch left out so that %d processes get equal shares",
            n_groups - usable,
            world,
        )
    per_step = groups_per_step * world
    return StepLayout(rank, world, usable, group_size, per_step, math.ceil(usable / per_step))
