"""Validated training parameters (the ``train:`` parameter group)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from ugvae_pipeline.progress import progress_mode
from ugvae_pipeline.training.selection import SELECT_EPOCH, VALIDATION
from ugvae_pipeline.validation import dataclass_kwargs

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """How a UG-VAE is trained.

    Attributes:
        epochs: passes over the training images (each epoch redraws its random groups).
        learning_rate: Adam step size (official 5e-3).
        group_size: B, images per group (official 128).
        groups_per_step: G, groups processed in one optimisation step.
        seed: seeds python, NumPy and torch.
        device: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``mps:N``.
        precision: ``auto`` (bf16 autocast on CUDA devices that support it, else fp32), ``fp32``, ``bf16``.
        compile: wrap the model in ``torch.compile``.
        devices: data-parallel processes (DistributedDataParallel). Each process takes whole
            groups, ``groups_per_step`` of them per step, so a step sees ``devices ×
            groups_per_step`` groups and matches one process with that many groups per step.
            Processes are spawned on CUDA devices 0..devices-1 (NCCL), or on the CPU (Gloo).
        progress: ``auto`` (a bar on a terminal, log lines otherwise), ``bar``, ``log`` or ``off``.
        log_every: steps between log lines when not showing a bar.
        global_kl_warmup_epochs: anneal the weight of the global KL in the training loss
            linearly from 0 to 1 over this many epochs (per step), then train on the plain
            negative ELBO; 0 (official) never anneals. Reported terms are always unweighted.
        global_kl_free_bits: free bits on the global KL, nats per dimension of the group code:
            the training loss counts each dimension's KL (averaged over a step's groups) as at
            least this much, so the optimiser gains nothing by closing a dimension below it
            (Kingma et al., 2016); 0 (official) trains on the plain KL. Reported terms are
            always the ELBO's. Models with a group latent only.
        checkpoint_every: write a checkpoint (model, optimizer, every RNG state, history)
            every this many epochs; 0 writes none.
        checkpoint_dir: the folder of the checkpoint file (working state, not a versioned
            artifact; one file, replaced atomically). Relative paths are from the project root.
        resume: continue from the checkpoint in ``checkpoint_dir`` (it must come from a run
            with the same model, seed and group plan); with no checkpoint there, the run is
            refused rather than started afresh.
        checkpoint_on_signal: on SIGTERM or Ctrl-C, finish the current step and write a
            checkpoint there (mid-epoch) before stopping, whatever ``checkpoint_every`` says;
            false stops after the step without writing one.
        monitor_every: score the group code on validation groups every this many epochs and
            at the last epoch (``training/monitor.py``): linear-SVM accuracy and k-means ARI of
            the group types, beside the pooling baselines, as history columns ``val_*``
            (MLflow metrics with the epoch as step); 0 turns it off.
        monitor_groups: validation groups per group type, built from validation images by the
            structured strategy of the evaluation (``groups.evaluation.strategy``, with its
            ``group_size``); at least 5 (the SVM's folds).
        monitor_seed: draws the validation groups, and seeds k-means and the SVM's folds.
        select_epoch: which epoch's weights are saved, registered and evaluated: ``last``,
            ``heldout_loss`` (the lowest held-out negative ELBO; no labels anywhere) or
            ``validation_svm_linear`` (the highest linear-SVM accuracy of the group code on the
            validation groups, among the scored epochs; labels only choose). Ties keep the
            earlier epoch (``training/selection.py``).
    """

    epochs: int = 20
    learning_rate: float = 5e-3
    group_size: int = 128
    groups_per_step: int = 1
    seed: int = 1
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    devices: int = 1
    progress: str = "auto"
    log_every: int = 50
    global_kl_warmup_epochs: float = 0
    global_kl_free_bits: float = 0.0
    checkpoint_every: int = 0
    checkpoint_dir: str = "data/06_models/checkpoints"
    resume: bool = False
    checkpoint_on_signal: bool = True
    monitor_every: int = 5
    monitor_groups: int = 10
    monitor_seed: int = 0
    select_epoch: str = "last"

    def __post_init__(self) -> None:
        for name in ("epochs", "group_size", "groups_per_step", "log_every", "devices"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"train.{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"train.seed must be an integer >= 0, got {self.seed!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= 1:
            raise ValueError(f"train.learning_rate must be a number in (0, 1], got {lr!r}")
        if str(self.device) not in DEVICES and not re.fullmatch(
            r"(cuda|mps):\d+", str(self.device)
        ):
            raise ValueError(
                f"train.device={self.device!r} is unknown; use one of {DEVICES}, cuda:N or mps:N"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"train.precision={self.precision!r} is unknown; use one of {PRECISIONS}"
            )
        progress_mode(self.progress, "train.progress")
        warmup = self.global_kl_warmup_epochs
        if isinstance(warmup, bool) or not isinstance(warmup, (int, float)) or not warmup >= 0:
            raise ValueError(
                f"train.global_kl_warmup_epochs must be a number >= 0 (0: no warm-up), got {warmup!r}"
            )
        bits = self.global_kl_free_bits
        if isinstance(bits, bool) or not isinstance(bits, (int, float)) or not bits >= 0:
            raise ValueError(
                f"train.global_kl_free_bits must be a number >= 0 (nats per dimension of the "
                f"group code; 0: off), got {bits!r}"
            )
        for name in ("compile", "resume", "checkpoint_on_signal"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"train.{name} must be true or false, got {getattr(self, name)!r}")
        every = self.checkpoint_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(
                f"train.checkpoint_every must be an integer >= 0 (0: off), got {every!r}"
            )
        if not isinstance(self.checkpoint_dir, str) or not self.checkpoint_dir.strip():
            raise ValueError(
                f"train.checkpoint_dir must be a non-empty path, got {self.checkpoint_dir!r}"
            )
        self._check_monitor()

    def _check_monitor(self) -> None:
        every = self.monitor_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"train.monitor_every must be an integer >= 0 (0: off), got {every!r}")
        n = self.monitor_groups
        if isinstance(n, bool) or not isinstance(n, int) or n < 5:
            raise ValueError(
                f"train.monitor_groups must be an integer >= 5 (validation groups per group type; "
                f"the SVM's 5 folds need 5 of each), got {n!r}"
            )
        seed = self.monitor_seed
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"train.monitor_seed must be an integer >= 0, got {seed!r}")
        if self.select_epoch not in SELECT_EPOCH:
            raise ValueError(
                f"train.select_epoch={self.select_epoch!r} is unknown; use one of {list(SELECT_EPOCH)}"
            )
        if self.select_epoch == VALIDATION and not every:
            raise ValueError(
                f"train.select_epoch={VALIDATION} chooses among the epochs the validation monitor "
                "scores, but train.monitor_every=0 turns it off; set train.monitor_every >= 1, or "
                "train.select_epoch to last or heldout_loss"
            )

    @property
    def monitor_on(self) -> bool:
        """Whether the validation monitor scores the group code during training."""
        return self.monitor_every > 0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a parameters mapping; unknown keys are an error naming the valid ones."""
        kwargs = dataclass_kwargs(cls, values, "train")
        if "progress" in kwargs:  # YAML 1.1 reads an unquoted `off` as false
            kwargs["progress"] = progress_mode(kwargs["progress"], "train.progress")
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_model_fits_training(
    model_name: str, has_group_latent: bool, contrastive_weight: float, config: TrainConfig
) -> None:
    """Options of the model and of its training that only work together, checked before any
    work: free bits act on a group code's KL; the contrastive halves need two groups a step."""
    if config.global_kl_free_bits > 0 and not has_group_latent:
        raise ValueError(
            f"train.global_kl_free_bits={config.global_kl_free_bits} acts on the KL of a group "
            f"code, which {model_name} has not; set it to 0 for this model"
        )
    if contrastive_weight > 0 and config.groups_per_step < 2:
        raise ValueError(
            f"model.contrastive_weight={contrastive_weight} contrasts the halves of a step's "
            f"groups with each other, but train.groups_per_step={config.groups_per_step}: set "
            "train.groups_per_step to 2 or more (each process's groups), or "
            "model.contrastive_weight=0"
        )
