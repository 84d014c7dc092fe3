"""Nodes of the training pipeline: the model ``model.name`` (UG-VAE or a baseline) trained on
the training groups, with its history, figures and report."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ugvae_pipeline import plotting
from ugvae_pipeline.html_report import last_epoch_table, params_table, render_report
from ugvae_pipeline.models import model_config_from_params, model_for_config
from ugvae_pipeline.runs import run_title
from ugvae_pipeline.training.batching import GroupBatcher
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.device import in_process_group
from ugvae_pipeline.training.distributed import spawn_training
from ugvae_pipeline.training.seed import seed_everything
from ugvae_pipeline.training.trainer import train


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
) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Seed, build the model ``model.name`` from ``model:`` and train it with ``train:`` on the
    group plan: in this process (one of a ``torchrun`` process group, or alone), or in
    ``train.devices`` spawned data-parallel processes. Returns None on ranks other than 0."""
    train_config = TrainConfig.from_dict(train_params)
    config = model_config_from_params(model_params)
    check_images_fit_model(images.shape, config)
    seed_everything(train_config.seed)
    model = model_for_config(config)
    run = mlflow.active_run()  # recorded in checkpoints: a resumed run names the run it continues
    # torchrun made this process one of a group: train in it; else spawn train.devices processes
    fit = spawn_training if train_config.devices > 1 and not in_process_group() else train
    return fit(model, images, train_groups, heldout_groups, train_config, run and run.info.run_id)


def model_for_mlflow(model: torch.nn.Module) -> torch.nn.Module:
    """The saved model (loaded back from disk), handed to the dataset that logs it to MLflow as a
    servable pyfunc model and registers it."""
    return model


def history_metrics(history: pd.DataFrame) -> dict[str, list[dict[str, float]]]:
    """Per-epoch metrics, with the epoch as the MLflow step."""
    columns = [c for c in history.columns if c != "epoch"]
    return {
        column: [
            {"value": float(v), "step": int(e)} for e, v in zip(history["epoch"], history[column])
        ]
        for column in columns
    }


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
    the parameters, and the training figures (PNG bytes)."""
    return render_report(
        f"Training report: {run_title(model_params, groups_params)}",
        {
            "Last epoch (negative ELBO and its terms, per image)": last_epoch_table(history),
            "Parameters": params_table({"model": model_params, "train": train_params}),
        },
        {name.replace("_", " "): png for name, png in figures.items()},
        intro=f"{len(history)} epoch(s); losses are per image, lower is better.",
    )


__all__ = [
    "model_for_mlflow",
    "history_metrics",
    "train_model",
    "training_figures",
    "training_report",
]
