"""Training checkpoints: everything a killed run needs to continue exactly where it stopped.

A checkpoint holds the model and optimizer ``state_dict``, every random number generator a
run draws from (python, NumPy, torch CPU and CUDA, and the trainer's own noise generator),
the epochs done, the steps done of the next epoch and its ELBO sums so far (a checkpoint
written on a signal, mid-epoch), the history so far, the id of the tracked run that wrote it
(when the caller gave one), the epoch ``train.select_epoch`` keeps so far with its weights
(``training/selection.py``), and the *signature* of the run: the model config, the
seed, the optimisation settings and a hash of the group plan. Resuming with another
signature is refused, since the continuation would silently be a different run.

Files are plain tensors, numbers and strings, loaded with ``torch.load(weights_only=True)``,
and written atomically (a temporary file in the same folder, then ``os.replace``), so a kill
at any moment leaves either the previous checkpoint or the new one, never a torn file.
A checkpoint is working state, not an artifact: the final model is the versioned output.

The trainer calls :func:`run_signature` once, :func:`resume_training` when ``train.resume`` is
set, and :func:`save_training_state` every ``train.checkpoint_every`` epochs and when a signal
stops it (rank 0 only).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from ugvae_pipeline.training.config import TrainConfig

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FILENAME = "ugvae_checkpoint.pt"


def checkpoint_path(checkpoint_dir: str | os.PathLike) -> Path:
    return Path(checkpoint_dir) / FILENAME


def array_digest(array: np.ndarray) -> str:
    """SHA-256 of an index array's shape, dtype and values (the group plan's identity)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.data)
    return digest.hexdigest()


def capture_rng_states(noise_generator: torch.Generator) -> dict[str, Any]:
    """Every generator's state as tensors and numbers (loadable with ``weights_only=True``)."""
    version, mt_state, gauss_next = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "python": {
            "version": version,
            "state": torch.tensor(mt_state, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "noise": noise_generator.get_state(),
    }


def restore_rng_states(states: dict[str, Any], noise_generator: torch.Generator) -> None:
    py = states["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss_next"]))
    np_state = states["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"][: torch.cuda.device_count()])
    noise_generator.set_state(states["noise"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a reader sees the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save({"format_version": FORMAT_VERSION, **state}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint`, loaded with ``weights_only=True``
    (``mmap``: tensors are mapped from the file, read only when used).

    Raises:
        ValueError: the file is not a loadable checkpoint of this format, naming it.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:
        raise ValueError(
            f"cannot load training checkpoint {path}: not a plain weights_only checkpoint file "
            f"({type(err).__name__}: {str(err)[:300]}); delete it or set train.resume=false"
        ) from err
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"training checkpoint {path} is not in format version {FORMAT_VERSION}; "
            "delete it or set train.resume=false"
        )
    return state


def check_signature(
    path: str | os.PathLike, saved: dict[str, Any], current: dict[str, Any]
) -> None:
    """Refuse to resume a run whose configuration differs from the checkpoint's."""
    keys = sorted(set(saved) | set(current))
    differences = [
        f"{k}: checkpoint {saved.get(k)!r}, this run {current.get(k)!r}"
        for k in keys
        if saved.get(k) != current.get(k)
    ]
    if differences:
        raise ValueError(
            f"refusing to resume from {path}: it was written by a run with another configuration "
            f"({'; '.join(differences)}). Resume with the checkpoint's parameters, or set "
            "train.resume=false (or another train.checkpoint_dir) to start afresh"
        )


def run_signature(
    model: nn.Module,
    train_groups: np.ndarray,
    heldout_groups: np.ndarray,
    config: TrainConfig,
    groups_per_step: int,
    precision: str,
) -> dict:
    """What a resumed run must share with the checkpoint to continue the same run exactly.

    ``groups_per_step`` counts the groups of a step over all processes; ``precision`` is
    ``fp32`` or the autocast dtype's name.
    """
    return {
        "model": model.config.to_dict(),
        "epochs": config.epochs,  # a resume takes them from here (ResumedRunHook)
        "seed": config.seed,
        "learning_rate": config.learning_rate,
        "groups_per_step": groups_per_step,
        "global_kl_warmup_epochs": config.global_kl_warmup_epochs,
        "precision": precision,
        "train_groups": array_digest(train_groups),
        "heldout_groups": array_digest(heldout_groups),
        # only where set, so checkpoints written before the option existed still resume
        **(
            {"global_kl_free_bits": config.global_kl_free_bits}
            if config.global_kl_free_bits
            else {}
        ),
    }


@dataclass
class RunState:
    """Where a run stands: the epochs done, the steps done of the next epoch and that epoch's
    ELBO sums over those steps (all processes), the history, the tracked run that wrote it."""

    epochs: int = 0
    step: int = 0
    sums: torch.Tensor | None = None
    images: int = 0
    history: list[dict] = field(default_factory=list)
    run_id: str | None = None
    # the epoch train.select_epoch keeps so far, with its weights (training/selection.py)
    selection: dict | None = None
    # the last redraw of the training groups from the model's codes (training/regroup.py):
    # {"epoch": the epoch after which, "clusters": each training image's cluster, a tensor}
    regrouped: dict | None = None


def save_training_state(
    path: Path,
    signature: dict,
    state: RunState,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    noise_generator: torch.Generator,
) -> None:
    """Checkpoint a run at ``state``: its signature, history, weights, optimizer and RNGs."""
    save_checkpoint(
        path,
        {
            "signature": signature,
            "epoch": state.epochs,
            "step": state.step,
            "partial_sums": state.sums.cpu() if state.sums is not None else None,
            "partial_images": state.images,
            "history": state.history,
            "run_id": state.run_id or "",
            "selection": state.selection,
            "regrouped": state.regrouped,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": capture_rng_states(noise_generator),
        },
    )


def checkpoint_run_id(path: str | os.PathLike) -> str | None:
    """The tracked run that wrote the checkpoint at ``path`` (None: no file, or no run)."""
    if not Path(path).exists():
        return None
    return load_checkpoint(path, mmap=True).get("run_id") or None  # no weights read


def no_checkpoint_message(path: str | os.PathLike) -> str:
    return (
        f"train.resume=true but there is no checkpoint at {path} to resume from: training "
        "writes one every train.checkpoint_every epochs (0, the default, writes none) and when "
        "SIGTERM or Ctrl-C stops it (train.checkpoint_on_signal). Set train.resume=false to "
        "train from the start, or train.checkpoint_dir to the checkpoint's folder"
    )


def checkpoint_to_resume(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint a resume continues, read without its weights (``mmap``): its
    ``signature`` (``epochs``: the run's train.epochs), ``epoch``, ``step`` and ``run_id``.

    Raises:
        ValueError: there is no checkpoint at ``path`` (a resume must not silently start
            again at epoch 1), or it does not load; naming the fix.
    """
    if not Path(path).exists():
        raise ValueError(no_checkpoint_message(path))
    return load_checkpoint(path, mmap=True)


def resume_training(
    path: Path,
    signature: dict,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    noise_generator: torch.Generator,
) -> RunState:
    """Load the checkpoint at ``path`` into the model, optimizer and generators.

    Returns where the run stands.

    Raises:
        ValueError: there is no checkpoint at ``path``, it does not load, or it was written by
            a run of another signature.
    """
    if not path.exists():
        raise ValueError(no_checkpoint_message(path))
    state = load_checkpoint(path)
    check_signature(path, state["signature"], signature)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    restore_rng_states(state["rng"], noise_generator)
    stands = RunState(
        int(state["epoch"]),
        int(state.get("step", 0)),
        state.get("partial_sums"),
        int(state.get("partial_images", 0)),
        list(state["history"]),
        state.get("run_id") or None,
        state.get("selection"),
        state.get("regrouped"),
    )
    where = f"after epoch {stands.epochs}"
    if stands.step:
        where += f" and step {stands.step} of epoch {stands.epochs + 1}"
    log.info("train.resume: continuing from %s %s", path, where)
    return stands
