"""Which epoch's weights a training run keeps (``train.select_epoch``).

``last`` keeps the weights of the last epoch. ``heldout_loss`` keeps the epoch with the lowest
held-out negative ELBO per image (validation images in random groups; no labels anywhere).
``validation_svm_linear`` keeps the epoch whose group code best separates the group types of the
validation groups (linear-SVM accuracy, :mod:`ugvae_pipeline.training.monitor`; the labels only
choose the epoch, they never reach the model); only the epochs the monitor scored compete.

The criterion is declared before training. Ties go to the earlier epoch. The best weights so
far are kept in memory (a CPU copy of the ``state_dict``) and in every checkpoint, so a resumed
run chooses among all of its epochs, those before the interruption included.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

SELECT_EPOCH = ("last", "heldout_loss", "validation_svm_linear")
"""The values of ``train.select_epoch``."""

VALIDATION = "validation_svm_linear"


def criterion_column(select_epoch: str, group_code: str | None = None) -> str | None:
    """The history column ``select_epoch`` optimises (None for ``last``).

    ``group_code``: the monitor's name of the scored group code (``global_code``, or
    ``mean_local_code`` for models without a group latent); needed for ``validation_svm_linear``.
    """
    if select_epoch == "last":
        return None
    if select_epoch == "heldout_loss":
        return "heldout_loss"
    if select_epoch == VALIDATION:
        if group_code is None:
            raise ValueError(
                "train.select_epoch=validation_svm_linear needs the validation monitor"
            )
        return f"val_{group_code}_svm_linear"
    raise ValueError(f"train.select_epoch={select_epoch!r} is unknown; use one of {SELECT_EPOCH}")


class EpochSelection:
    """The best epoch so far on one history column, and a CPU copy of its weights.

    ``column`` None (``train.select_epoch=last``) keeps nothing: the last epoch is the choice.
    """

    def __init__(self, select_epoch: str, column: str | None):
        self.select_epoch = select_epoch
        self.column = column
        self.minimise = column == "heldout_loss"
        self.epoch: int | None = None
        self.value: float | None = None
        self.weights: dict[str, torch.Tensor] | None = None

    def offer(self, row: dict, model: nn.Module) -> bool:
        """Consider an epoch's history ``row``; keep ``model``'s weights if it is the best so far
        (strictly: a tie keeps the earlier epoch). Rows without a finite value of the column
        (epochs the monitor did not score) are skipped. Returns whether the epoch was kept."""
        if self.column is None:
            return False
        value = row.get(self.column)
        if value is None or not math.isfinite(float(value)):
            return False
        value = float(value)
        if self.value is not None and (
            value >= self.value if self.minimise else value <= self.value
        ):
            return False
        self.epoch, self.value = int(row["epoch"]), value
        self.weights = {
            name: tensor.detach().to("cpu", copy=True)
            for name, tensor in model.state_dict().items()
        }
        return True

    def saved(self) -> dict[str, Any] | None:
        """What a checkpoint keeps of the selection (None: nothing chosen yet, or ``last``)."""
        if self.epoch is None:
            return None
        return {
            "select_epoch": self.select_epoch,
            "epoch": self.epoch,
            "value": self.value,
            "model": self.weights,
        }

    def restore(self, saved: dict[str, Any] | None) -> None:
        """Continue from what :meth:`saved` returned (a checkpoint's selection)."""
        if saved is None or self.column is None:
            return
        if saved.get("select_epoch") != self.select_epoch:
            raise ValueError(
                f"the checkpoint chose its epoch by train.select_epoch={saved.get('select_epoch')}"
                f", this run by {self.select_epoch}; resume with the checkpoint's, or set "
                "train.resume=false to start afresh"
            )
        self.epoch, self.value = int(saved["epoch"]), float(saved["value"])
        self.weights = dict(saved["model"])

    def apply(self, model: nn.Module, last_epoch: int) -> int:
        """Load the chosen epoch's weights into ``model`` (nothing to do for the last epoch);
        return the chosen epoch (``last_epoch`` when nothing was chosen)."""
        if self.epoch is None or self.epoch == last_epoch:
            return last_epoch
        model.load_state_dict(self.weights)
        return self.epoch
