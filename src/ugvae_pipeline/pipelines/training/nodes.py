"""Nodes of the training pipeline: the model ``model.name`` (UG-VAE or a baseline) trained on
the training groups, with its history, figures and report."""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ugvae_pipeline import plotting
from ugvae_pipeline.data.grouping import split_indices
from ugvae_pipeline.html_report import last_epoch_table, params_table, render_report
from ugvae_pipeline.lineage import of_images
from ugvae_pipeline.models import model_config_from_params, model_for_config
from ugvae_pipeline.plotting import validation_scores_figure
from ugvae_pipeline.runs import run_title, training_groups
from ugvae_pipeline.training.batching import GroupBatcher
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.device import in_process_group, rank_and_world
from ugvae_pipeline.training.distributed import spawn_training
from ugvae_pipeline.training.monitor import GroupCodeMonitor
from ugvae_pipeline.training.regroup import ClusterRefresh
from ugvae_pipeline.training.seed import seed_everything
from ugvae_pipeline.training.selection import VALIDATION
from ugvae_pipeline.training.trainer import train

log = logging.getLogger(__name__)


def check_images_fit_model(images_shape: tuple[int, ...], config) -> None:
    c, h, w = images_shape[1:]
    if (c, h, w) != (config.channels, config.image_size, config.image_size):
        raise ValueError(
            f"the images are {c}x{h}x{w} (C x H x W) but the model is configured for "
            f"{config.channels}x{config.image_size}x{config.image_size} ({config.architecture}); "
            f"set model.channels={c} and a model.architecture for {h}x{w} images, "
            f"or data.image_folder.image_size / data.celeba.image_size to the architecture's size"
        )


def train_model(
    images: np.ndarray,
    train_groups: np.ndarray,
    heldout_groups: np.ndarray,
    model_params: dict,
    train_params: dict,
    groups_params: dict | None = None,
    validation_groups: np.ndarray | None = None,
    validation_group_metadata: pd.DataFrame | None = None,
    image_metadata: pd.DataFrame | None = None,
) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Seed, build the model ``model.name`` from ``model:`` and train it with ``train:`` on the
    group plan: in this process (one of a ``torchrun`` process group, or alone), or in
    ``train.devices`` spawned data-parallel processes. Returns None on ranks other than 0.

    The model keeps its ``provenance`` (saved in its file, :func:`training_provenance`), so a
    later run that scores it records what it is rather than what the configuration says.

    ``validation_groups`` and their table (the grouping's, empty when none could be built) are
    what the trainer scores the group code on every ``train.monitor_every`` epochs, and what
    ``train.select_epoch=validation_svm_linear`` chooses the epoch on (:func:`validation_monitor`).

    With ``groups.training.strategy=clusters`` and ``groups.clusters.features`` the model's own
    codes, the trainer redraws the groups from clusters of the training images' codes every
    ``groups.clusters.refresh_every`` epochs (:func:`cluster_refresh`; ``image_metadata`` names
    the training images)."""
    train_config = TrainConfig.from_dict(train_params)
    config = model_config_from_params(model_params)
    check_images_fit_model(images.shape, config)
    seed_everything(train_config.seed)
    model = model_for_config(config)
    run = mlflow.active_run()  # recorded in checkpoints: a resumed run names the run it continues
    run_id = run and run.info.run_id
    # torchrun made this process one of a group: train in it; else spawn train.devices processes
    fit = spawn_training if train_config.devices > 1 and not in_process_group() else train
    monitor = validation_monitor(validation_groups, validation_group_metadata, train_config)
    regroup = cluster_refresh(groups_params, model_params, train_params, image_metadata)
    result = fit(
        model, images, train_groups, heldout_groups, train_config, run_id, monitor, regroup
    )
    if result is not None:
        result[0].provenance = training_provenance(
            images, model_params, train_config.seed, groups_params or {}, run_id
        )
    return result


def cluster_refresh(
    groups_params: dict | None,
    model_params: dict,
    train_params: dict,
    image_metadata: pd.DataFrame | None,
) -> ClusterRefresh | None:
    """The redraw of the training groups from the model's codes, or None: training groups not
    formed from clusters, or clusters of the pixels (``groups.clusters.features=pixels``)."""
    groups_params = groups_params or {}
    strategy, _ = training_groups(model_params, groups_params)
    block = groups_params.get("clusters") or {}
    if strategy != "clusters" or block.get("features", "pixels") == "pixels":
        return None
    if image_metadata is None:
        raise ValueError(
            "refreshing the training clusters needs image_metadata (the training split)"
        )
    return ClusterRefresh(
        split_indices(image_metadata, "train"),
        block["features"],
        block["n_clusters"],
        block["alpha"],
        block["refresh_every"],
        block["seed"],
        train_params["seed"],
        train_params["group_size"],
    )


def validation_monitor(
    groups: np.ndarray | None, table: pd.DataFrame | None, config: TrainConfig
) -> GroupCodeMonitor | None:
    """The monitor of the validation groups, or None: the monitor off (``train.monitor_every=0``
    and no choice on them), or no validation groups (logged; refused when
    ``train.select_epoch=validation_svm_linear`` needs them)."""
    needed = config.select_epoch == VALIDATION
    if not (config.monitor_on or needed) or rank_and_world()[0] != 0:
        return None  # off, or another rank than 0 under torchrun: only rank 0 scores
    if groups is None or table is None or not len(groups):
        if needed:
            raise ValueError(
                f"train.select_epoch={VALIDATION} chooses the epoch on validation groups, but "
                "there are none (see the build_validation_groups log); set train.select_epoch "
                "to last or heldout_loss"
            )
        log.warning(
            "validation scores of the group code are off (train.monitor_every=%d): no validation "
            "groups",
            config.monitor_every,
        )
        return None
    return GroupCodeMonitor(
        groups, table["group_type"].to_numpy(), max(config.monitor_every, 1), config.monitor_seed
    )


def training_provenance(
    images: np.ndarray, model_params: dict, seed: int, groups_params: dict, run_id: str | None
) -> dict:
    """What a trained model records of its training: the MLflow run that trained it, the seed,
    how its training groups were formed and the images it was fitted on (image cache key and
    data source, ``lineage.Lineage``); plain values, saved in the model file."""
    strategy, label_column = training_groups(model_params, groups_params)
    lineage = of_images(images)
    return {
        "training_run_id": run_id,
        "seed": seed,
        "training_groups": {"strategy": strategy, "label_column": label_column},
        "lineage": lineage.to_dict() if lineage is not None else None,
    }


def model_for_mlflow(model: torch.nn.Module) -> torch.nn.Module:
    """The saved model (loaded back from disk), handed to the dataset that logs it to MLflow as a
    servable pyfunc model and registers it."""
    return model


def history_metrics(history: pd.DataFrame) -> dict[str, list[dict[str, float]]]:
    """Per-epoch metrics, with the epoch as the MLflow step; a column's empty epochs (the
    ``val_*`` scores of epochs the monitor skipped) are left out. The ``selected`` column
    becomes one metric, ``selected_epoch``: the epoch whose weights were saved."""
    columns = [c for c in history.columns if c not in ("epoch", "selected")]
    metrics = {
        column: [
            {"value": float(v), "step": int(e)}
            for e, v in zip(history["epoch"], history[column])
            if pd.notna(v)
        ]
        for column in columns
    }
    if "selected" in history.columns:
        (selected,) = history.loc[history["selected"].astype(bool), "epoch"]
        metrics["selected_epoch"] = [{"value": float(selected), "step": int(selected)}]
    return metrics


def training_figures(
    model: torch.nn.Module,
    images: np.ndarray,
    heldout_groups: np.ndarray,
    history: pd.DataFrame,
    figure_params: dict,
) -> tuple[Figure, Figure, Figure]:
    """Reconstructions of held-out groups, samples per mixture component, loss curves."""
    batcher = GroupBatcher(images, torch.device("cpu"))
    x = batcher(heldout_groups[: figure_params["n_groups"]])
    reconstruction = model.reconstruct(x)
    return (
        plotting.reconstruction_figure(x, reconstruction, figure_params["n_images"]),
        plotting.component_samples_figure(model, figure_params["n_images"], figure_params["seed"]),
        plotting.loss_curves_figure(history),
    )


def training_report(
    history: pd.DataFrame,
    model_params: dict,
    train_params: dict,
    groups_params: dict,
    **figures: bytes,
) -> str:
    """One HTML page: the model and how its training groups were formed, last-epoch losses,
    the epoch kept and the validation scores of the group code over training, the parameters,
    and the training figures (PNG bytes)."""
    tables = {"Last epoch (negative ELBO and its terms, per image)": last_epoch_table(history)}
    intro = f"{len(history)} epoch(s); losses are per image, lower is better."
    if "selected" in history.columns:
        selected = int(history.loc[history["selected"].astype(bool), "epoch"].iloc[0])
        choice = train_params.get("select_epoch", "last")
        intro += f" Saved model: epoch {selected} (train.select_epoch={choice})."
    scores = validation_scores_table(history)
    if scores is not None:
        tables["Validation groups: the group code over training (linear SVM, k-means ARI)"] = scores
        cost = history["val_seconds"].sum()
        intro += (
            f" Scoring the validation groups took {cost:.1f} s, "
            f"{100 * cost / max(history['seconds'].sum(), 1e-9):.1f} % of the training seconds."
        )
    tables["Parameters"] = params_table({"model": model_params, "train": train_params})
    return render_report(
        f"Training report: {run_title(model_params, groups_params)}",
        tables,
        {name.replace("_", " "): png for name, png in figures.items()},
        intro=intro,
    )


def validation_scores_table(history: pd.DataFrame) -> pd.DataFrame | None:
    """The scored epochs' ``val_*`` columns and held-out loss (None: nothing was scored)."""
    if "val_seconds" not in history.columns:
        return None
    scored = history[history["val_seconds"].notna()]
    columns = ["epoch", "heldout_loss"] + [c for c in history.columns if c.startswith("val_")]
    return scored[columns].rename(columns=lambda c: c.removeprefix("val_")).round(4)


__all__ = [
    "cluster_refresh",
    "model_for_mlflow",
    "history_metrics",
    "train_model",
    "training_figures",
    "training_provenance",
    "training_report",
    "validation_monitor",
    "validation_scores_figure",
]
