"""Figures of a trained model: matplotlib ``Figure`` objects, saved by the Data Catalog."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from ugvae_pipeline.models.elbo import ELBOTerms


def _show_grid(ax, images: torch.Tensor, nrow: int, title: str) -> None:
    """``images [N, C, H, W]`` in [0, 1] as one grid image on ``ax``."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=1, pad_value=1.0)
    ax.imshow(grid.permute(1, 2, 0).numpy().clip(0, 1), cmap="gray" if grid.shape[0] == 1 else None)
    ax.set_title(title)
    ax.axis("off")


def reconstruction_figure(
    x: torch.Tensor, reconstruction: torch.Tensor, n_images: int = 16
) -> Figure:
    """Held-out groups ``[G, B, C, H, W]`` (top of each pair) above their reconstructions."""
    n_groups = x.shape[0]
    fig, axes = plt.subplots(n_groups, 1, figsize=(n_images * 0.6, n_groups * 1.6), squeeze=False)
    for g in range(n_groups):
        pair = torch.cat([x[g, :n_images], reconstruction[g, :n_images]])
        _show_grid(
            axes[g, 0], pair, nrow=n_images, title=f"held-out group {g}: input / reconstruction"
        )
    fig.tight_layout()
    return fig


def component_samples_figure(
    model, n_per_component: int = 12, seed: int = 0, n_rows: int = 8
) -> Figure:
    """One row per mixture component k: z ~ N(μ_k(β), σ²_k(β)) decoded with β ~ N(0, I)
    (GMVAE: z ~ N(μ_k, σ²_k)). A model without components (β-VAE, ML-VAE): ``n_rows`` rows
    of samples from its prior, one group per row."""
    generator = torch.Generator().manual_seed(seed)
    if model.has_mixture:
        k = model.config.n_components
        rows = [
            model.sample(1, n_per_component, generator=generator, component=c)[0] for c in range(k)
        ]
        title = "samples per mixture component (rows)"
    else:
        k = n_rows
        rows = list(model.sample(k, n_per_component, generator=generator))
        title = "samples from the prior (no mixture components; one group per row)"
    fig, ax = plt.subplots(figsize=(n_per_component * 0.6, k * 0.6 + 0.5))
    _show_grid(ax, torch.cat(rows), nrow=n_per_component, title=title)
    fig.tight_layout()
    return fig


def loss_curves_figure(history: pd.DataFrame) -> Figure:
    """Train and held-out negative ELBO and each term per image, against epoch."""
    names = ELBOTerms.NAMES
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        for split, style in (("train", "-"), ("heldout", "--")):
            ax.plot(
                history["epoch"], history[f"{split}_{name}"], style, marker="o", ms=3, label=split
            )
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0, 0].set_ylabel("nats per image")
    axes[0, 0].legend()
    fig.tight_layout()
    return fig


VALIDATION_LINES = {  # history column infix → legend label, line style
    "global_code": ("group code", "-"),
    "mean_local_code": ("mean local code", "--"),
    "mean_mixture_probs": ("mean π", "-."),
    "mean_image": ("mean image", ":"),
}


def validation_scores_figure(history: pd.DataFrame) -> Figure:
    """The group code's scores on the validation groups against epoch (``val_*`` history
    columns: linear-SVM accuracy, k-means ARI), beside the pooling baselines, the held-out
    loss and, for models with a group latent, μ_β's between-group spread over its posterior
    std (``val_global_code_spread``, with the level 1 dotted); a vertical line marks the epoch kept (``selected``). Without any ``val_*`` column
    (the monitor off, or no validation groups) the figure says so."""
    spread = "val_global_code_spread"
    has_spread = spread in history.columns and history[spread].notna().any()
    panels = 4 if has_spread else 3
    fig, axes = plt.subplots(1, panels, figsize=(11 / 3 * panels, 3.2), squeeze=False, sharex=True)
    scored = [
        c for c in history.columns if c.startswith("val_") and c not in ("val_seconds", spread)
    ]
    for ax, (score, title) in zip(
        axes[0], (("svm_linear", "linear SVM accuracy"), ("kmeans_ari", "k-means ARI"))
    ):
        for name, (label, style) in VALIDATION_LINES.items():
            column = f"val_{name}_{score}"
            if column in scored:
                rows = history[history[column].notna()]
                ax.plot(rows["epoch"], rows[column], style, marker="o", ms=3, label=label)
        ax.set_title(f"validation groups: {title}")
    loss = axes[0, 2]
    loss.plot(history["epoch"], history["heldout_loss"], "-", marker="o", ms=3, color="black")
    loss.set_title("held-out loss (nats per image)")
    if not scored:
        for ax in axes[0, :2]:
            ax.text(
                0.5,
                0.5,
                "not scored\n(train.monitor_every=0,\nor no validation groups)",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
    else:
        axes[0, 0].legend(fontsize=8)
    if has_spread:
        rows = history[history[spread].notna()]
        ax = axes[0, 3]
        ax.plot(rows["epoch"], rows[spread], "-", marker="o", ms=3, color="tab:purple")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_title("μ_β between-group spread / posterior std", fontsize=10)
    if "selected" in history.columns and history["selected"].astype(bool).any():
        selected = int(history.loc[history["selected"].astype(bool), "epoch"].iloc[0])
        for ax in axes[0]:
            ax.axvline(selected, color="grey", lw=0.8)
        loss.set_title(f"held-out loss (nats per image); kept: epoch {selected}", fontsize=10)
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)


__all__ = [
    "component_samples_figure",
    "loss_curves_figure",
    "reconstruction_figure",
    "validation_scores_figure",
]
