"""Figures of the paper's experiments (§4.1–4.3), each returned as a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from ugvae_pipeline.evaluation.metrics import standardise  # noqa: E402


@threadpool_limits.wrap(
    limits=1
)  # t-SNE on a busy 2-core machine: 47-63 s threaded, 12-18 s on one
def _embed(codes: np.ndarray, method: str, seed: int) -> np.ndarray:
    x = standardise(codes)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        perplexity = float(min(30, max(2, (len(x) - 1) / 3)))
        return TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed
        ).fit_transform(x)
    raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}")


def code_map(
    codes: np.ndarray, colour_by: np.ndarray, method: str = "tsne", title: str = "", seed: int = 0
) -> Figure:
    """2-D map (t-SNE or PCA of standardised codes) of codes ``[n, D]`` coloured by ``colour_by [n]``.

    Use with μ_β coloured by group type (series, random, database) or μ_z coloured by label.
    """
    if method not in ("tsne", "pca"):
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}")
    codes = np.asarray(codes, dtype=np.float64)
    # codes that do not vary (a collapsed code) have no map: scikit-learn's t-SNE divides by
    # their zero spread and its Barnes-Hut step can then crash the process
    constant = len(codes) < 2 or not np.ptp(codes, axis=0).max() > 0
    xy = np.zeros((len(codes), 2)) if constant else _embed(codes, method, seed)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    values = np.asarray(colour_by)
    for value in sorted(set(values.tolist()), key=str):
        mask = values == value
        ax.scatter(xy[mask, 0], xy[mask, 1], s=8, label=str(value), alpha=0.8)
    ax.legend(markerscale=2, fontsize=8, loc="best")
    ax.set_title(
        (title or f"{method.upper()} of codes")
        + ("\n(every code is the same: no map)" if constant else "")
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def _image_grid(images: torch.Tensor, rows: int, cols: int, title: str) -> Figure:
    """``images [rows·cols, C, H, W]`` in [0, 1] as one tiled figure."""
    c, h, w = images.shape[1:]
    tiles = images.view(rows, cols, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c)
    fig, ax = plt.subplots(figsize=(cols * 0.6 + 0.5, rows * 0.6 + 0.5))
    ax.imshow(
        tiles.squeeze(-1).numpy() if c == 1 else tiles.numpy(),
        cmap="gray" if c == 1 else None,
        vmin=0,
        vmax=1,
    )
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


@torch.no_grad()
def interpolation_grid(
    model: torch.nn.Module,
    global_a: np.ndarray | None,
    global_b: np.ndarray | None,
    local_a: np.ndarray,
    local_b: np.ndarray,
    steps: int = 7,
) -> Figure:
    """Paper §4.1(a): rows interpolate μ_z (``local_a → local_b``, ``[dim_z]``), columns μ_β
    (``global_a → global_b``, ``[dim_beta]``, two groups' global codes); ``steps × steps`` decodes.
    Keep ``local_a == local_b`` for a fixed local code. A model without a group latent
    (``global_a is None``): one row, the local code interpolated along the columns."""
    t = torch.linspace(0, 1, steps)
    z = (1 - t)[:, None] * torch.as_tensor(local_a).float() + t[:, None] * torch.as_tensor(
        local_b
    ).float()
    if global_a is None:
        images = model.decode(z[None])
        return _image_grid(images[0].cpu(), 1, steps, "local code interpolated (no global latent)")
    beta = (1 - t)[:, None] * torch.as_tensor(global_a).float() + t[:, None] * torch.as_tensor(
        global_b
    ).float()
    z_grid = z[:, None, :].expand(steps, steps, -1)  # row: z, column: β
    beta_grid = beta[None, :, :].expand(steps, steps, -1)
    images = model.decode(
        z_grid.reshape(1, steps * steps, -1), beta_grid.reshape(1, steps * steps, -1)
    )
    return _image_grid(images[0].cpu(), steps, steps, "rows: local code, columns: global code")


@torch.no_grad()
def component_sweep(
    model: torch.nn.Module,
    component: int,
    steps: int = 7,
    radius: float = 1.5,
    z_spread: float = 1.0,
    seed: int = 0,
) -> Figure:
    """Paper §4.1(b): columns sweep β along −radius·1 → +radius·1; rows are local codes
    z = μ_k(β) + s·σ_k(β)·u for one fixed random direction u and s in −z_spread..z_spread.

    The same grid for every model: without a global latent (β-VAE, GMVAE) the columns move z
    along a second random direction v (s·radius·σ·v); without mixture components (β-VAE,
    ML-VAE) z is centred on the N(0, I) prior and ``component`` is unused.
    """
    generator = torch.Generator().manual_seed(seed)
    t = torch.linspace(-1, 1, steps)
    beta = None
    if model.has_group_latent:
        beta = (radius * t)[:, None].expand(steps, model.config.dim_beta)  # [steps, D]
    if model.has_mixture:
        means, variances = (
            model.component_prior(beta) if beta is not None else model.component_prior()
        )
        centre, std = (
            means[..., component, :],
            variances[..., component, :].sqrt(),
        )  # [steps, dz] or [dz]
        where = f"component {component}: rows z around μ_k"
    else:
        centre, std = torch.zeros(model.config.dim_z), torch.ones(model.config.dim_z)
        where = "no mixture components: rows z around 0"
    dim_z = centre.shape[-1]
    u = torch.randn(dim_z, generator=generator)
    z = (
        centre.expand(steps, dim_z)[None]
        + (z_spread * t)[:, None, None] * std.expand(steps, dim_z)[None] * u
    )
    if beta is None:
        v = torch.randn(dim_z, generator=generator)
        z = z + (radius * t)[None, :, None] * std.expand(steps, dim_z)[None] * v  # [rows, cols, dz]
        images = model.decode(z.reshape(1, steps * steps, -1))
        return _image_grid(
            images[0].cpu(),
            steps,
            steps,
            f"{where}; columns z along a 2nd direction (no global latent)",
        )
    images = model.decode(
        z.reshape(1, steps * steps, -1),
        beta[None].expand(steps, -1, -1).reshape(1, steps * steps, -1),
    )
    return _image_grid(images[0].cpu(), steps, steps, f"{where}; columns β")


def gmm_curve_figure(curve) -> Figure:
    """Mean log-likelihood of grouped vs random codes against GMM components (``gmm_loglik_curve``)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(curve["components"], curve["grouped"], "o-", label="structured groups")
    ax.plot(curve["components"], curve["random"], "s-", label="random groups")
    ax.set_xlabel("GMM components")
    ax.set_ylabel("mean log-likelihood of μ_β")
    ax.legend()
    fig.tight_layout()
    return fig
