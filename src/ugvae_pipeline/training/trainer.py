"""Training loop for UG-VAE: groups in, trained model and per-epoch history out.

Knows nothing of Kedro. Images arrive as a uint8 array ``[N, C, H, W]`` (possibly a memory
map) and groups as index arrays; ``training/batching.py`` turns them into pixel batches on the
device, and ``training/device.py`` chooses the device, the precision and the model wrappers.

Data-parallel training (``train.devices > 1``, or a process group set up by ``torchrun``)
shards every step along the groups axis: each process takes whole groups, since a group's
global code needs all of its members. The reparameterisation noise of a step is drawn for
all of its groups, identically on every process, and each keeps its own groups' share; so
N processes with G groups each make exactly the update of one process with N·G groups.

With ``train.checkpoint_every``, rank 0 writes a checkpoint (``training/checkpoint.py``)
every that many epochs; SIGTERM or Ctrl-C finishes the current step, writes one there
(``train.checkpoint_on_signal``) and raises ``TrainingInterrupted`` (``training/preemption.py``).
``train.resume`` continues from a checkpoint, at an epoch or a step, and ends with the weights
of an uninterrupted run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from ugvae_pipeline.models.elbo import annealed_loss, free_bits_kl
from ugvae_pipeline.models.outputs import LatentNoise
from ugvae_pipeline.progress import TrainingProgress as _Progress
from ugvae_pipeline.training import checkpoint as ckpt
from ugvae_pipeline.training.batching import GroupBatcher, StepLayout, check_groups, step_layout
from ugvae_pipeline.training.config import TrainConfig, check_model_fits_training
from ugvae_pipeline.training.device import (
    autocast,
    autocast_dtype,
    in_process_group,
    make_optimizer,
    place_model,
    precision_name,
    process_device,
    rank_and_world,
)
from ugvae_pipeline.training.listeners import notify
from ugvae_pipeline.training.loss_tracking import TermAverager, check_finite
from ugvae_pipeline.training.preemption import StopRequests, TrainingInterrupted, stop_group
from ugvae_pipeline.training.regroup import (
    ClusterRefresh,
    redraw,
    shared_clusters,
)
from ugvae_pipeline.training.selection import VALIDATION, EpochSelection, criterion_column

if TYPE_CHECKING:
    from ugvae_pipeline.training.monitor import GroupCodeMonitor

log = logging.getLogger(__name__)


def train(
    model: nn.Module,
    images: np.ndarray,
    train_groups: np.ndarray,
    heldout_groups: np.ndarray,
    config: TrainConfig,
    run_id: str | None = None,
    monitor: GroupCodeMonitor | None = None,
    regroup: ClusterRefresh | None = None,
) -> tuple[nn.Module, pd.DataFrame] | None:
    """Train with Adam on a group plan; return the model (CPU, eval mode) and its history.

    Called inside an initialised process group (``torchrun``, or the processes that
    ``distributed.spawn_training`` starts for ``config.devices > 1``), it trains this process's
    share and returns ``None`` on every process but rank 0, so only rank 0 writes outputs.
    ``config.devices > 1`` outside a process group is an error naming both ways.

    Args:
        model: a UG-VAE (a module with a ``config`` whose forward takes ``(x, noise)`` and
            returns an object with ``terms``).
        images: uint8 ``[N, C, H, W]``.
        train_groups: ``[epochs, n_groups, B]`` image indices; epoch e uses ``train_groups[e]``.
        heldout_groups: ``[n_heldout, B']`` indices of images not trained on.
        config: training parameters.
        run_id: the tracked run this training belongs to, recorded in its checkpoints so a
            resumed run can name the run it continues.
        monitor: scores the group code on validation groups between epochs, on rank 0
            (``training/monitor.py``); needed by ``config.select_epoch=validation_svm_linear``.
        regroup: redraws the epochs left of ``train_groups`` from clusters of the model's own
            codes every few epochs (``training/regroup.py``); None keeps the plan.

    Returns:
        The model of the epoch ``config.select_epoch`` chooses (``training/selection.py``) and
        a table with one row per epoch: ``train_<term>`` and ``heldout_<term>`` per image for
        every ELBO term, seconds and images per second (over all processes), the monitor's
        ``val_*`` scores on the epochs it scored, and ``selected`` (true on the chosen epoch).

    Raises:
        FloatingPointError: a non-finite loss, naming the epoch and step.
        TrainingInterrupted: SIGTERM or Ctrl-C; training stopped after a step (checkpointed
            there with ``config.checkpoint_on_signal``).
    """
    check_groups(train_groups, len(images), "train_groups", ndim=3)
    check_groups(heldout_groups, len(images), "heldout_groups", ndim=2)
    if config.select_epoch == VALIDATION and monitor is None and rank_and_world()[0] == 0:
        raise ValueError(
            f"train.select_epoch={VALIDATION} chooses the epoch on validation groups, but none "
            "were given to score: build them (the grouping pipeline's validation_groups), or set "
            "train.select_epoch to last or heldout_loss"
        )
    check_model_fits_training(
        type(model).__name__,
        getattr(model, "has_group_latent", True),
        getattr(model.config, "contrastive_weight", 0),
        config,
    )
    if train_groups.shape[0] != config.epochs:
        raise ValueError(
            f"train_groups holds {train_groups.shape[0]} epochs of groups but train.epochs="
            f"{config.epochs}; rebuild the groups with the same train.epochs"
        )
    if config.devices > 1 and not in_process_group():
        raise ValueError(
            f"train.devices={config.devices} needs a process group: call "
            "ugvae_pipeline.training.distributed.spawn_training (as the training node does), or "
            "launch with torchrun"
        )
    return _train_process(
        model, images, train_groups, heldout_groups, config, run_id, monitor, regroup
    )


@torch.no_grad()
def evaluate_loss(
    model: nn.Module,
    batcher: GroupBatcher,
    groups: np.ndarray,
    groups_per_step: int,
    dtype: torch.dtype | None = None,
    seed: int | None = None,
) -> dict[str, float]:
    """Negative ELBO per image and its terms on fixed groups ``[n, B]``, in eval mode.

    With ``seed``, the reparameterisation noise is drawn from a generator seeded with it,
    so repeated evaluations (each epoch, any number of processes) use the same noise.
    In a process group, each process evaluates a contiguous share of the groups and the
    result is the mean over all of them.
    """
    was_training = model.training
    model.eval()
    averager = TermAverager(batcher.device)
    rank, world = rank_and_world()
    share = np.array_split(np.arange(len(groups)), world)[rank]
    noise = None
    if seed is not None:
        generator = torch.Generator(device=batcher.device).manual_seed(seed)
        noise = LatentNoise.draw(
            model.config, len(groups), groups.shape[1], generator, batcher.device
        )
    for start in range(0, len(share), groups_per_step):
        picked = share[start : start + groups_per_step]
        chunk = groups[picked]
        x = batcher(chunk)
        with autocast(batcher.device, dtype):
            if noise is None:
                terms = model(x).terms
            else:
                terms = model(x, noise[int(picked[0]) : int(picked[-1]) + 1]).terms
        averager.add(terms, chunk.size)
    averager.all_reduce()
    model.train(was_training)
    return averager.means()


def _train_process(
    model: nn.Module,
    images: np.ndarray,
    train_groups: np.ndarray,
    heldout_groups: np.ndarray,
    config: TrainConfig,
    run_id: str | None,
    monitor: GroupCodeMonitor | None = None,
    regroup: ClusterRefresh | None = None,
) -> tuple[nn.Module, pd.DataFrame] | None:
    run = _start(model, images, train_groups, config)
    rank = run.layout.rank
    signature = ckpt.run_signature(
        run.model,
        train_groups,
        heldout_groups,
        config,
        run.layout.groups_per_step,
        precision_name(run.dtype),
    )
    selection = _selection(run, monitor, signature)
    if regroup is not None:
        signature["regroup"] = regroup.signature()
    checkpoint_file = ckpt.checkpoint_path(config.checkpoint_dir)
    state = ckpt.RunState()  # where the run stands: epochs and steps done, history
    if config.resume:
        state = ckpt.resume_training(
            checkpoint_file, signature, run.model, run.optimizer, run.noise_generator
        )
    selection.restore(state.selection)
    plan, regrouped = train_groups, state.regrouped  # the plan as redrawn so far
    if regroup is not None and regrouped is not None:
        plan = redraw(regroup, plan, np.asarray(regrouped["clusters"]), regrouped["epoch"])
    checkpointed = state.epochs  # epochs done in the last checkpoint
    rows, state.run_id = state.history, run_id
    done = state.epochs * run.layout.steps_per_epoch + state.step  # steps since the start
    try:
        with StopRequests(stop_group()) as stop:
            for epoch in range(state.epochs + 1, config.epochs + 1):
                averager, earlier = TermAverager(run.device), 0
                if epoch == state.epochs + 1 and state.sums is not None:
                    earlier = state.images  # the epoch's images before the checkpoint
                    if rank == 0:  # its sums, over every process: added once
                        averager.sums += state.sums.to(run.device)
                        averager.images = state.images
                first_step = state.step if epoch == state.epochs + 1 else 0
                seconds, done, stopped = _train_epoch(
                    run, plan[epoch - 1], epoch, done, averager, first_step, stop
                )
                if stopped is not None:
                    _stop(run, signature, checkpoint_file, state, epoch, done, averager, stopped)
                averager.all_reduce()
                rows.append(_epoch_row(run, epoch, averager, seconds, heldout_groups, earlier))
                _score_epoch(run, monitor, selection, rows[-1], images)
                if regroup is not None and regroup.due(epoch, config.epochs):
                    plan, regrouped = _regroup(run, regroup, plan, epoch)
                if rank == 0:
                    notify(rows[-1])
                state = ckpt.RunState(epoch, 0, None, 0, rows, run_id, selection.saved(), regrouped)
                if rank == 0 and config.checkpoint_every and epoch % config.checkpoint_every == 0:
                    ckpt.save_training_state(
                        checkpoint_file,
                        signature,
                        state,
                        run.model,
                        run.optimizer,
                        run.noise_generator,
                    )
                    checkpointed = epoch
    except TrainingInterrupted:
        raise
    except BaseException:
        if rank == 0 and checkpointed:
            log.error(
                "training stopped after epoch %d; its checkpoint %s is intact: rerun with "
                "train.resume=true to continue from it",
                checkpointed,
                checkpoint_file,
            )
        raise
    finally:
        run.progress.close()
    if rank != 0:
        return None
    selected = selection.apply(run.model, config.epochs)
    if selected != config.epochs:
        log.info(
            "train.select_epoch=%s: keeping epoch %d (%s %.4f), not the last",
            config.select_epoch,
            selected,
            selection.column,
            selection.value,
        )
    model = run.model.cpu().to(memory_format=torch.contiguous_format).eval()
    history = pd.DataFrame(rows)
    history["selected"] = history["epoch"] == selected
    return model, history


def _stop(
    run: _Run,
    signature: dict,
    checkpoint_file,
    state: ckpt.RunState,
    epoch: int,
    done: int,
    averager: TermAverager,
    signal_name: str,
) -> None:
    """After a signal: checkpoint this step (rank 0, with ``checkpoint_on_signal``) and raise."""
    step = done - (epoch - 1) * run.layout.steps_per_epoch
    averager.all_reduce()  # the epoch's sums so far over every process, kept by rank 0
    written = None
    if run.config.checkpoint_on_signal:
        if run.layout.rank == 0:
            stands = ckpt.RunState(
                epoch - 1, step, averager.sums, averager.images, state.history, state.run_id
            )
            stands.selection, stands.regrouped = state.selection, state.regrouped
            ckpt.save_training_state(
                checkpoint_file, signature, stands, run.model, run.optimizer, run.noise_generator
            )
        written = checkpoint_file
    if in_process_group():
        torch.distributed.barrier()  # the checkpoint is complete before any process leaves
    where = f"epoch {epoch}, step {step}/{run.layout.steps_per_epoch}"
    if written is None:
        message = (
            f"{signal_name}: training stopped after {where} (train.checkpoint_on_signal=false)"
        )
    else:
        message = (
            f"{signal_name}: training stopped after {where}; checkpoint {written} holds it: "
            "rerun with train.resume=true to continue from there"
        )
    if run.layout.rank == 0:
        log.warning("%s", message)
    raise TrainingInterrupted(message, signal_name, written)


@dataclass
class _Run:
    """One process's training: what every step and epoch uses."""

    config: TrainConfig
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype; None for fp32
    model: nn.Module  # the module whose weights are trained and returned
    step_model: nn.Module  # what a training step calls (see place_model)
    eval_model: nn.Module  # what the held-out evaluation calls
    batcher: GroupBatcher
    optimizer: torch.optim.Optimizer
    noise_generator: torch.Generator  # every step's reparameterisation noise
    layout: StepLayout
    progress: _Progress


def _start(
    model: nn.Module, images: np.ndarray, train_groups: np.ndarray, config: TrainConfig
) -> _Run:
    """This process's model on its device, pixel batcher, optimizer, noise and steps."""
    rank, world = rank_and_world()
    device = process_device(config.device)
    dtype = autocast_dtype(config.precision, device)
    model, step_model, eval_model = place_model(model, device, world, config.compile)
    batcher = GroupBatcher(images, device)
    optimizer = make_optimizer(model.parameters(), config.learning_rate, device)
    noise_generator = torch.Generator(device=device).manual_seed(config.seed)
    layout = step_layout(train_groups, config.groups_per_step, rank, world)
    progress = _Progress(
        config.progress if rank == 0 else "off",
        layout.steps_per_epoch * config.epochs,
        config.log_every,
    )
    if rank == 0:
        log.info(
            "training on %s%s (%s): %d epochs x %d steps of %d group(s) of %d images",
            device,
            f" x {world} processes" if world > 1 else "",
            precision_name(dtype),
            config.epochs,
            layout.steps_per_epoch,
            layout.groups_per_step,
            layout.group_size,
        )
    return _Run(
        config,
        device,
        dtype,
        model,
        step_model,
        eval_model,
        batcher,
        optimizer,
        noise_generator,
        layout,
        progress,
    )


def _train_epoch(
    run: _Run,
    epoch_groups: np.ndarray,
    epoch: int,
    done: int,
    averager: TermAverager,
    first_step: int = 0,
    stop: StopRequests | None = None,
) -> tuple[float, int, str | None]:
    """The optimisation steps of one epoch on its groups ``[n_groups, B]``, from step
    ``first_step + 1`` (the steps before were done by a run this one resumes).

    Adds the epoch's ELBO terms (this process's images) to ``averager``. Returns the epoch's
    seconds, the steps done since the start of the run, and the signal that stopped the epoch
    after its current step (None: the epoch is complete).
    """
    config, layout, device = run.config, run.layout, run.device
    run.model.train()
    step_losses: list[torch.Tensor] = []
    plan = run.batcher.plan(epoch_groups[: layout.usable])  # one copy per epoch
    start = time.perf_counter()
    for step, first in enumerate(layout.step_starts(), 1):
        if step <= first_step:
            continue
        chunk = plan[first : first + layout.groups_per_step]
        mine = layout.share(len(chunk))
        # noise for every group of the step, the same on every process
        noise = LatentNoise.draw(
            run.model.config, len(chunk), layout.group_size, run.noise_generator, device
        )[mine]
        x = run.batcher(chunk[mine])  # [groups, B, C, H, W]
        with autocast(device, run.dtype):
            output = run.step_model(x, noise)
        terms, global_kl = output.terms, None
        if config.global_kl_free_bits > 0:  # over this process's groups of the step
            encoding = output.encoding
            global_kl = free_bits_kl(
                encoding.global_mean,
                encoding.global_var,
                config.global_kl_free_bits,
                x.shape[0] * x.shape[1],
            )
        run.optimizer.zero_grad(set_to_none=True)
        weight = _global_kl_weight(config, done, layout.steps_per_epoch)
        loss = annealed_loss(terms, weight, global_kl)
        if output.auxiliary is not None:  # a term outside the ELBO (model.contrastive_weight)
            loss = loss + output.auxiliary
        loss.backward()
        run.optimizer.step()
        averager.add(terms, x.shape[0] * x.shape[1])  # this process's images
        step_losses.append(terms.loss.detach())
        done += 1
        shown = None
        if done % config.log_every == 0 or step == layout.steps_per_epoch:
            shown = check_finite(step_losses, epoch, step)
        run.progress.step(done, epoch, shown)
        if stop is not None and (stopped := stop.agreed()) is not None:
            if step_losses:  # never checkpoint a diverged model
                check_finite(step_losses, epoch, step)
            return time.perf_counter() - start, done, stopped
    return time.perf_counter() - start, done, None


def _epoch_row(
    run: _Run,
    epoch: int,
    averager: TermAverager,
    seconds: float,
    heldout_groups: np.ndarray,
    earlier_images: int = 0,
) -> dict:
    """An epoch's history row: its training terms, the held-out terms now, its speed (logged;
    ``earlier_images``: trained before a checkpoint this run resumed from, not in ``seconds``)."""
    config = run.config
    row = {"epoch": epoch}
    row.update({f"train_{k}": v for k, v in averager.means().items()})
    heldout = evaluate_loss(
        run.eval_model,
        run.batcher,
        heldout_groups,
        config.groups_per_step,
        run.dtype,
        seed=config.seed,
    )
    row.update({f"heldout_{k}": v for k, v in heldout.items()})
    row["seconds"] = seconds
    row["images_per_second"] = (averager.images - earlier_images) / max(seconds, 1e-9)
    if run.layout.rank == 0:
        log.info(
            "epoch %d/%d: train loss %.3f, held-out loss %.3f per image (%.1fs, %.0f images/s)",
            epoch,
            config.epochs,
            row["train_loss"],
            row["heldout_loss"],
            seconds,
            row["images_per_second"],
        )
    return row


def _selection(run: _Run, monitor: GroupCodeMonitor | None, signature: dict) -> EpochSelection:
    """The choice of the epoch to keep (``train.select_epoch``); what it depends on joins the
    resume ``signature``, so a resumed run chooses among its epochs as the run it continues."""
    config = run.config
    group_code = None
    if monitor is not None:
        from ugvae_pipeline.training.monitor import group_code_name

        group_code = group_code_name(run.model)
    # from the configuration, the same on every process (only rank 0 holds the monitor)
    if config.select_epoch != "last":
        signature["select_epoch"] = config.select_epoch
    if config.select_epoch == VALIDATION:
        for name in ("monitor_every", "monitor_groups", "monitor_seed"):
            signature[name] = getattr(config, name)
    if run.layout.rank != 0:  # only rank 0 returns a model
        return EpochSelection("last", None)
    return EpochSelection(config.select_epoch, criterion_column(config.select_epoch, group_code))


def _score_epoch(
    run: _Run,
    monitor: GroupCodeMonitor | None,
    selection: EpochSelection,
    row: dict,
    images: np.ndarray,
) -> None:
    """Rank 0, between epochs: the monitor's validation scores join the epoch's ``row`` when
    the epoch is due, then the selection considers the epoch."""
    if run.layout.rank != 0:
        return
    epoch = row["epoch"]
    if monitor is not None and monitor.due(epoch, run.config.epochs):
        row.update(monitor(run.model, run.batcher, images))
        code = "global_code" if "val_global_code_svm_linear" in row else "mean_local_code"
        log.info(
            "epoch %d: validation groups: %s linear SVM %.3f, k-means ARI %.3f (%.1fs)",
            epoch,
            code.replace("_", " "),
            row[f"val_{code}_svm_linear"],
            row[f"val_{code}_kmeans_ari"],
            row["val_seconds"],
        )
    selection.offer(row, run.model)


def _regroup(
    run: _Run, regroup: ClusterRefresh, plan: np.ndarray, epoch: int
) -> tuple[np.ndarray, dict]:
    """After ``epoch``: the plan's epochs left redrawn from clusters of the model's codes (rank
    0's, on every process), and what a checkpoint keeps of it."""
    start = time.perf_counter()
    clusters = regroup.clusters(run.model, run.batcher) if run.layout.rank == 0 else None
    if in_process_group():
        clusters = shared_clusters(clusters, len(regroup.indices), run.device)
    plan = redraw(regroup, plan, clusters, epoch)
    if run.layout.rank == 0:
        log.info(
            "epoch %d: training groups redrawn from %d clusters of the model's %s (sizes %s, "
            "%.1fs)",
            epoch,
            regroup.n_clusters,
            regroup.features.replace("_", " "),
            np.bincount(clusters).tolist(),
            time.perf_counter() - start,
        )
    return plan, {"epoch": epoch, "clusters": torch.as_tensor(clusters, dtype=torch.long)}


def _global_kl_weight(config: TrainConfig, steps_done: int, steps_per_epoch: int) -> float:
    """Weight of the global KL at a step: linear 0 → 1 over ``global_kl_warmup_epochs``."""
    if config.global_kl_warmup_epochs <= 0:
        return 1.0
    return min(1.0, steps_done / (config.global_kl_warmup_epochs * steps_per_epoch))
