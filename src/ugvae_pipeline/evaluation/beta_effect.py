"""How much the global code β moves the decoded images, measured beside the local code z.

The paper's claims that β is a generative global factor (§4.1) and that it aligns domains
(§4.2) are shown by interpolation grids; this module puts a number on them. On the
evaluation groups' posterior means (μ_β per group, μ_z per image), with every image decoded
as f([μ_z ; μ_β]):

``beta_change``
    mean absolute change of a decoded pixel (intensities in [0, 1]) when each group's β is
    replaced by another group's β (a fixed derangement of the groups drawn from ``seed``),
    the local codes held.
``beta_change_across_types``
    the same with the β of a group of another type (a seeded draw among the groups of the
    other types); NaN when the groups have fewer than two types.
``z_change``
    the same when each image's local code is replaced by another image's local code (a
    seeded derangement of all the images of all the groups), β held.
``beta_effect``, ``beta_effect_across_types``
    ``beta_change / z_change`` and ``beta_change_across_types / z_change``: 0 when β is
    ignored by the decoder, about 1 when β moves the images as much as the local code does.
``component_spread``
    mixture models: mean absolute pixel difference between the decoded component means
    f([μ_k(β) ; β]) of two different components k ≠ k', averaged over the groups' β (GMVAE:
    f(μ_k), its components do not depend on a group).
``component_beta_change``, ``component_beta_change_across_types``
    UG-VAE: mean absolute change of the decoded component means f([μ_k(β) ; β]) when β is
    switched to that of the partner group (any other group / a group of another type).
``component_beta_effect``, ``component_beta_effect_across_types``
    ``component_beta_change* / component_spread``.

Entries a model has no latent for are NaN: everything β-based for the i.i.d. models (β-VAE,
GMVAE), the component entries for the models without mixture components (β-VAE, ML-VAE). A
ratio with a zero denominator is ``inf`` (0/0 is NaN).

Vectorised over groups and images, ``groups_per_chunk`` groups decoded at a time, in eval
mode without gradients; deterministic given ``seed``. The evaluate pipeline scores a fixed
subsample (:func:`subsample`: ``evaluate.beta_effect.max_groups`` groups spread over the
table, their first ``images_per_group`` images). No Kedro.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ugvae_pipeline.evaluation.code_tables import code_matrix
from ugvae_pipeline.models.registry import model_name

# every key of ``beta_effect_scores``, in report order, with what it measures
BETA_EFFECT_SCORES: dict[str, str] = {
    "beta_change": "mean |Δ pixel| when each group's β is replaced by another group's β (local codes held)",
    "beta_change_across_types": "the same with the β of a group of another type",
    "z_change": "mean |Δ pixel| when each image's local code is replaced by another image's (β held)",
    "beta_effect": "beta_change / z_change (0: β is ignored by the decoder)",
    "beta_effect_across_types": "beta_change_across_types / z_change",
    "component_spread": "mean |Δ pixel| between decoded component means f([μ_k(β); β]) of two components",
    "component_beta_change": "mean |Δ pixel| of the decoded component means when β switches to another group's",
    "component_beta_change_across_types": "the same when β switches to a group of another type",
    "component_beta_effect": "component_beta_change / component_spread",
    "component_beta_effect_across_types": "component_beta_change_across_types / component_spread",
}


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``range(n)`` with no fixed point (one random cycle through all n)."""
    if n < 2:
        raise ValueError(f"a derangement needs at least two items, got {n}")
    order = rng.permutation(n)
    partner = np.empty(n, dtype=np.int64)
    partner[order] = np.roll(order, -1)
    return partner


def other_type_partners(group_types: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """For each group, a group of another type drawn uniformly among them; ``None`` with fewer
    than two types."""
    types, inverse = np.unique(np.asarray(group_types), return_inverse=True)
    if len(types) < 2:
        return None
    inverse = inverse.reshape(-1)
    n = len(inverse)
    by_type = np.argsort(inverse, kind="stable")  # group indices, one block per type
    counts = np.bincount(inverse)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    own_count, own_start = counts[inverse], starts[inverse]
    n_other = n - own_count
    draw = np.minimum((rng.random(n) * n_other).astype(np.int64), n_other - 1)
    # the draw-th group outside the own type's block of ``by_type``
    return by_type[np.where(draw < own_start, draw, draw + own_count)]


def _ratio(numerator: float, denominator: float) -> float:
    if not (math.isfinite(numerator) and math.isfinite(denominator)):
        return math.nan
    if denominator > 0:
        return numerator / denominator
    return math.inf if numerator > 0 else math.nan


def _abs_sum(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().sum(dtype=torch.float64))


def _pairwise_abs_sum(decoded: Tensor) -> float:
    """Sum over the pairs k < k' of ``decoded [..., K, C, H, W]`` of |decoded_k − decoded_k'|."""
    flat = decoded.flatten(-3)  # [..., K, P]
    total = 0.0
    for i in range(flat.shape[-2] - 1):  # K is small: one vectorised difference per component
        total += float(
            (flat[..., i : i + 1, :] - flat[..., i + 1 :, :]).abs().sum(dtype=torch.float64)
        )
    return total


@torch.no_grad()
def beta_effect_scores(
    model: torch.nn.Module,
    global_means: np.ndarray | None,
    local_means: np.ndarray,
    group_types: np.ndarray | None = None,
    seed: int = 0,
    groups_per_chunk: int = 16,
) -> dict[str, float]:
    """The scores of ``BETA_EFFECT_SCORES`` (a flat dict of floats, every key always present).

    Args:
        model: a trained model (a ``models.BaseGroupVAE``).
        global_means: μ_β ``[G, dim_beta]`` (unused, may be ``None``, for models without a
            group latent).
        local_means: μ_z ``[G, B, dim_z]``.
        group_types: ``[G]`` type of each group, for the ``*_across_types`` entries.
        seed: draws the pairings of groups and of images.
        groups_per_chunk: groups decoded at once (memory bound).
    """
    name = model_name(model)
    has_beta, has_mixture = model.has_group_latent, model.has_mixture
    local_np = np.asarray(local_means)
    if local_np.ndim != 3:
        raise ValueError(
            f"local_means must be [groups, group size, dim_z], got shape {local_np.shape}"
        )
    n_groups, group_size = local_np.shape[:2]
    if n_groups < 2:
        raise ValueError(f"the β-effect scores need at least two groups, got {n_groups}")
    if groups_per_chunk < 1:
        raise ValueError(f"groups_per_chunk must be at least 1, got {groups_per_chunk}")
    if has_beta and (global_means is None or len(global_means) != n_groups):
        raise ValueError(f"a {name} needs one global code per group ({n_groups})")
    if group_types is not None and len(group_types) != n_groups:
        raise ValueError(f"group_types has {len(group_types)} entries for {n_groups} groups")

    rng = np.random.default_rng(seed)
    group_partner = derangement(n_groups, rng)
    image_partner = derangement(n_groups * group_size, rng)
    type_partner = None if group_types is None else other_type_partners(group_types, rng)

    weight = next(model.parameters())
    device, dtype = weight.device, weight.dtype
    z = torch.as_tensor(local_np, dtype=dtype, device=device)
    z_flat = z.reshape(n_groups * group_size, -1)
    beta = (
        torch.as_tensor(np.asarray(global_means), dtype=dtype, device=device) if has_beta else None
    )
    partners = {"": torch.as_tensor(group_partner, device=device)}
    if type_partner is not None:
        partners["_across_types"] = torch.as_tensor(type_partner, device=device)
    image_partner_t = torch.as_tensor(image_partner, device=device).view(n_groups, group_size)

    sums: dict[str, float] = {key: 0.0 for key in BETA_EFFECT_SCORES}
    image_pixels = component_pixels = component_pairs = 0
    was_training = model.training
    model.eval()
    try:
        if has_mixture and not has_beta:  # GMVAE: its components do not depend on a group
            means, _ = model.component_prior()
            component_means = model.decode(means[None])[0]  # [K, C, H, W]
            sums["component_spread"] = _pairwise_abs_sum(component_means)
            k = component_means.shape[0]
            component_pairs = k * (k - 1) // 2 * component_means[0].numel()
        for start in range(0, n_groups, groups_per_chunk):
            chunk = slice(start, min(n_groups, start + groups_per_chunk))
            z_chunk = z[chunk]
            beta_chunk = beta[chunk] if has_beta else None
            base = model.decode(z_chunk, beta_chunk)  # [g, B, C, H, W]
            image_pixels += base.numel()
            swapped_z = z_flat[image_partner_t[chunk]]  # another image's local code
            sums["z_change"] += _abs_sum(model.decode(swapped_z, beta_chunk), base)
            if not has_beta:
                continue
            for suffix, partner in partners.items():
                other = beta[partner[chunk]]
                sums[f"beta_change{suffix}"] += _abs_sum(model.decode(z_chunk, other), base)
            if not has_mixture:
                continue
            means, _ = model.component_prior(beta_chunk)  # [g, K, dim_z]
            component_means = model.decode(means, beta_chunk)  # [g, K, C, H, W]
            k = component_means.shape[1]
            sums["component_spread"] += _pairwise_abs_sum(component_means)
            component_pairs += (
                component_means.shape[0] * k * (k - 1) // 2 * component_means[0, 0].numel()
            )
            component_pixels += component_means.numel()
            for suffix, partner in partners.items():
                other = beta[partner[chunk]]
                other_means, _ = model.component_prior(other)
                sums[f"component_beta_change{suffix}"] += _abs_sum(
                    model.decode(other_means, other), component_means
                )
    finally:
        model.train(was_training)

    nan = math.nan
    scores = {key: nan for key in BETA_EFFECT_SCORES}
    scores["z_change"] = sums["z_change"] / image_pixels
    if has_beta:
        for suffix in partners:
            scores[f"beta_change{suffix}"] = sums[f"beta_change{suffix}"] / image_pixels
    if has_mixture and component_pairs:
        scores["component_spread"] = sums["component_spread"] / component_pairs
    if has_mixture and has_beta:
        for suffix in partners:
            scores[f"component_beta_change{suffix}"] = (
                sums[f"component_beta_change{suffix}"] / component_pixels
            )
    for suffix in ("", "_across_types"):
        scores[f"beta_effect{suffix}"] = _ratio(scores[f"beta_change{suffix}"], scores["z_change"])
        scores[f"component_beta_effect{suffix}"] = _ratio(
            scores[f"component_beta_change{suffix}"], scores["component_spread"]
        )
    return scores


def subsample(
    global_means: np.ndarray,
    local_means: np.ndarray,
    group_types: np.ndarray,
    max_groups: int,
    images_per_group: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most ``max_groups`` groups, evenly spaced over the table (so every group type keeps its
    share), and their first ``images_per_group`` images: the scores are means, and decoding
    every image of every 64×64 group on a CPU costs minutes for no better estimate."""
    if max_groups < 2 or images_per_group < 1:
        raise ValueError(
            f"evaluate.beta_effect needs max_groups >= 2 and images_per_group >= 1, got {max_groups}, {images_per_group}"
        )
    n_groups = len(local_means)
    keep = np.unique(np.linspace(0, n_groups - 1, min(n_groups, max_groups)).round().astype(int))
    return global_means[keep], local_means[keep, :images_per_group], group_types[keep]


def codes_from_tables(
    global_codes: pd.DataFrame, local_codes: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """μ_β ``[G, dim_beta]``, μ_z ``[G, B, dim_z]`` and the group types ``[G]`` from the extract
    pipeline's code tables, groups in the order of ``global_codes``, images by position."""
    order = global_codes["group_id"].to_numpy()
    local = local_codes.sort_values(["group_id", "position"])
    sizes = local.groupby("group_id").size()
    if sizes.nunique() != 1:
        raise ValueError(
            f"every evaluation group must have the same size, got sizes {sorted(set(sizes))}"
        )
    missing = set(order) - set(sizes.index)
    if missing:
        raise ValueError(f"local_codes has no images of groups {sorted(missing)[:5]}")
    z = code_matrix(local, "local_mean").reshape(len(sizes), int(sizes.iloc[0]), -1)
    index = np.searchsorted(sizes.index.to_numpy(), order)  # sizes.index is sorted
    return (
        code_matrix(global_codes, "global_mean"),
        z[index],
        global_codes["group_type"].to_numpy(str),
    )
