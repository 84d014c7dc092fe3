"""The UG-VAE objective (docs/model.md §4) and the baselines' (β-VAE, GMVAE, ML-VAE, Neural
Statistician): every term of every model in one place.

ELBO per group (maximised; the loss is its negative):

    Σ_i E_q[log N(x_i | f([z_i ; β]), var_x I)]
    − Σ_i Σ_k π_ik KL(q(z_i | x_i) ‖ N(μ_k(β), σ²_k(β)))
    − Σ_i KL(Cat(π_i) ‖ Cat(1/K))
    − KL(q(β | X) ‖ N(0, I))

With ``model.mixture_prior: global`` the third term is Σ_i KL(Cat(π_i) ‖ p(d | β)), with
p(d | β) = Cat(softmax(g(β))) evaluated at the sampled β.

All terms are closed form between diagonal Gaussians / categoricals; the expectation over
the component d_i is exact. Terms are reported per image: group sums divided by the number
of images G·B, so the per-group global KL is shared by the B images of its group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F


@dataclass
class ELBOTerms:
    """Negative ELBO and its terms, each a scalar per image (nats).

    ``loss = reconstruction + local_kl + mixture_kl + global_kl``, where
    ``reconstruction`` is the negative Gaussian log-likelihood of the pixels. The baselines
    report the same names: a term a model lacks is 0, and the β-VAE's loss weights
    ``local_kl`` by its ``beta`` (the reported term is unweighted).
    """

    loss: Tensor
    reconstruction: Tensor
    local_kl: Tensor
    mixture_kl: Tensor
    global_kl: Tensor

    NAMES = ("loss", "reconstruction", "local_kl", "mixture_kl", "global_kl")

    @classmethod
    def from_terms(
        cls,
        reconstruction: Tensor,
        local_kl: Tensor,
        mixture_kl: Tensor | None = None,
        global_kl: Tensor | None = None,
        local_kl_weight: float = 1.0,
    ) -> ELBOTerms:
        """The terms and their sum; a term a model lacks (``None``) is 0, and ``local_kl``
        enters the loss weighted by ``local_kl_weight`` (β-VAE's β; reported unweighted)."""
        zero = local_kl.new_zeros(())
        mixture_kl = zero if mixture_kl is None else mixture_kl
        global_kl = zero if global_kl is None else global_kl
        weighted = local_kl if local_kl_weight == 1.0 else local_kl_weight * local_kl
        return cls(
            loss=reconstruction + weighted + mixture_kl + global_kl,
            reconstruction=reconstruction,
            local_kl=local_kl,
            mixture_kl=mixture_kl,
            global_kl=global_kl,
        )

    def as_floats(self) -> dict[str, float]:
        return {name: float(getattr(self, name).detach()) for name in self.NAMES}


def standard_normal_kl_per_dim(mean: Tensor, var: Tensor) -> Tensor:
    """KL(N(mean, var) ‖ N(0, 1)) of each dimension, elementwise."""
    return 0.5 * (mean.pow(2) + var - 1.0 - torch.log(var))


def standard_normal_kl(mean: Tensor, var: Tensor) -> Tensor:
    """KL(N(mean, var) ‖ N(0, I)), summed over the last dim (halving is exact in floating
    point, so this is bit for bit the sum of the per-dimension terms halved at the end)."""
    return standard_normal_kl_per_dim(mean, var).sum(-1)


def categorical_uniform_kl(probs: Tensor) -> Tensor:
    """KL(Cat(probs) ‖ Cat(1/K)) over the last dim; 0·log 0 is taken as 0."""
    k = probs.shape[-1]
    return torch.special.xlogy(probs, probs).sum(-1) + math.log(k)


def categorical_kl(probs: Tensor, prior_log_probs: Tensor) -> Tensor:
    """KL(Cat(probs) ‖ Cat(exp(prior_log_probs))) over the last dim; 0·log 0 is taken as 0."""
    return (torch.special.xlogy(probs, probs) - probs * prior_log_probs).sum(-1)


def product_of_gaussians(
    means: Tensor, log_vars: Tensor, include_prior: bool = False
) -> tuple[Tensor, Tensor]:
    """Global posterior q(β | X) as a product of per-observation Gaussian factors.

    Args:
        means: factor means m_i, ``[G, B, D]``.
        log_vars: factor log-variances log v_i, ``[G, B, D]``.
        include_prior: also multiply by the prior N(0, I) (one more factor of precision 1).

    Returns:
        ``(mean [G, D], var [G, D])`` with Λ = Σ_i 1/v_i (+1), var = 1/Λ,
        mean = var · Σ_i m_i / v_i. Invariant to the order of the B observations.
    """
    precision = torch.exp(-log_vars)
    total_precision = precision.sum(-2)
    if include_prior:
        total_precision = total_precision + 1.0
    var = 1.0 / total_precision
    mean = var * (precision * means).sum(-2)
    return mean, var


def reconstruction_nll(x: Tensor, reconstruction_mean: Tensor, var_x: float) -> Tensor:
    """−log N(x | mean, var_x·I) per image, averaged over the G·B images of ``[G, B, C, H, W]``."""
    n_images = x.shape[0] * x.shape[1]
    pixels = x.shape[-3:].numel()
    squared_error = F.mse_loss(reconstruction_mean, x, reduction="sum")
    return squared_error / (2 * var_x * n_images) + 0.5 * pixels * math.log(2 * math.pi * var_x)


def mixture_local_kl(
    local_mean: Tensor,
    local_var: Tensor,
    mixture_probs: Tensor,
    prior_means: Tensor,
    prior_vars: Tensor,
) -> Tensor:
    """Σ_i Σ_k π_ik KL(q(z_i) ‖ N(μ_k, σ²_k)) summed over all images (not per image).

    ``local_mean, local_var [G, B, D]``, ``mixture_probs [G, B, K]``, ``prior_means,
    prior_vars [G, K, D]`` (per group) or ``[K, D]`` (shared by every group).
    """
    if prior_means.dim() == 2:
        prior_means, prior_vars = prior_means.unsqueeze(0), prior_vars.unsqueeze(0)
    # KL(q(z_i) ‖ p_k) = ½ [Σ_d log σ²_kd − Σ_d log v_id + Σ_d (v_id + (m_id − μ_kd)²) / σ²_kd − D]
    log_var_ratio = torch.log(prior_vars).sum(-1).unsqueeze(1) - torch.log(local_var).sum(
        -1, keepdim=True
    )
    quadratic = (
        (local_var.unsqueeze(2) + (local_mean.unsqueeze(2) - prior_means.unsqueeze(1)).square())
        / prior_vars.unsqueeze(1)
    ).sum(-1)  # [G, B, K]
    kl_per_component = 0.5 * (log_var_ratio + quadratic - local_mean.shape[-1])  # [G, B, K]
    return torch.sum(mixture_probs * kl_per_component)


def uniform_mixture_kl(mixture_probs: Tensor) -> Tensor:
    """Σ_i KL(Cat(π_i) ‖ Cat(1/K)) summed over all images (not per image)."""
    n = mixture_probs.shape[:-1].numel()
    return torch.special.xlogy(mixture_probs, mixture_probs).sum() + n * math.log(
        mixture_probs.shape[-1]
    )


def ugvae_elbo(
    x: Tensor,
    reconstruction_mean: Tensor,
    var_x: float,
    local_mean: Tensor,
    local_var: Tensor,
    mixture_probs: Tensor,
    prior_means: Tensor,
    prior_vars: Tensor,
    global_mean: Tensor,
    global_var: Tensor,
    mixture_log_prior: Tensor | None = None,
) -> ELBOTerms:
    """Negative ELBO of G groups of B images, per image.

    Args:
        x: images ``[G, B, C, H, W]`` in [0, 1].
        reconstruction_mean: decoder output f([z_i ; β]) ``[G, B, C, H, W]``.
        var_x: likelihood variance.
        local_mean, local_var: q(z_i | x_i), ``[G, B, dim_z]``.
        mixture_probs: π_i = q(d_i | z_i), ``[G, B, K]``.
        prior_means, prior_vars: μ_k(β), σ²_k(β) of each group's sampled β, ``[G, K, dim_z]``.
        global_mean, global_var: q(β | X), ``[G, dim_beta]``.
        mixture_log_prior: log p(d | β) of each group's sampled β, ``[G, K]``; ``None`` is the
            official uniform Cat(1/K).
    """
    # Only the totals are needed, so each term is reduced as early as possible: fewer,
    # smaller operations (the step is dominated by per-operation overhead at B = 128).
    n_images = x.shape[0] * x.shape[1]
    reconstruction = reconstruction_nll(x, reconstruction_mean, var_x)
    local_kl = (
        mixture_local_kl(local_mean, local_var, mixture_probs, prior_means, prior_vars) / n_images
    )
    if mixture_log_prior is None:  # official uniform Cat(1/K)
        mixture_kl = uniform_mixture_kl(mixture_probs) / n_images
    else:
        mixture_kl = categorical_kl(mixture_probs, mixture_log_prior.unsqueeze(1)).sum() / n_images
    global_kl = standard_normal_kl(global_mean, global_var).sum() / n_images
    return ELBOTerms.from_terms(reconstruction, local_kl, mixture_kl, global_kl)


def annealed_loss(
    terms: ELBOTerms, global_kl_weight: float, global_kl: Tensor | None = None
) -> Tensor:
    """The training loss: the negative ELBO with its global KL weighted by ``global_kl_weight``
    in [0, 1], and replaced by ``global_kl`` where given (free bits, :func:`free_bits_kl`).

    A warm-up (``train.global_kl_warmup_epochs``) reaches weight 1 and the loss is the negative
    ELBO again. Reported terms are always the unweighted ELBO's.
    """
    if global_kl_weight == 1.0 and global_kl is None:
        return terms.loss
    kl = terms.global_kl if global_kl is None else global_kl
    return terms.loss - terms.global_kl + global_kl_weight * kl


def free_bits_kl(
    global_mean: Tensor, global_var: Tensor, free_bits: float, n_images: int
) -> Tensor:
    """The global KL with free bits (Kingma et al., 2016; ``train.global_kl_free_bits``), per image.

    For q(β | X) = N(global_mean, global_var) of G groups ``[G, dim]``, each dimension's
    KL to N(0, 1), averaged over the groups, counts as at least ``free_bits`` nats:
    G · Σ_j max(λ, mean_g KL_gj) / n_images. No gradient closes a dimension below λ; with
    λ = 0 it is the ELBO's global KL, Σ_g Σ_j KL_gj / n_images.
    """
    per_dim = standard_normal_kl_per_dim(global_mean.float(), global_var.float())  # [G, dim]
    return per_dim.mean(0).clamp(min=free_bits).sum() * per_dim.shape[0] / n_images


def halves_info_nce(first: Tensor, second: Tensor, temperature: float = 0.1) -> Tensor:
    """InfoNCE between the group codes of two halves of G groups, ``[G, dim]`` each: the mean
    over both directions of the cross-entropy of picking half i's partner among the G other
    halves by cosine similarity / ``temperature`` (van den Oord et al., 2018; SimCLR's
    symmetric form). Not an ELBO term: the auxiliary loss of ``model.contrastive_weight``.
    log G when the codes say nothing about which halves belong together."""
    a, b = F.normalize(first, dim=-1), F.normalize(second, dim=-1)
    logits = a @ b.T / temperature  # [G, G]: half i of the first kind against every second
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


# -- baselines: the same terms, reported under the same names ---------------------


def beta_vae_elbo(
    x: Tensor,
    reconstruction_mean: Tensor,
    var_x: float,
    local_mean: Tensor,
    local_var: Tensor,
    beta: float = 1.0,
) -> ELBOTerms:
    """β-VAE: Σ_i E_q[log p(x_i | z_i)] − β Σ_i KL(q(z_i | x_i) ‖ N(0, I)), per image.

    ``local_kl`` is reported unweighted; ``loss = reconstruction + beta · local_kl`` (the
    negative ELBO when ``beta == 1``). ``mixture_kl`` and ``global_kl`` are 0: no such latents.
    """
    n_images = x.shape[0] * x.shape[1]
    reconstruction = reconstruction_nll(x, reconstruction_mean, var_x)
    local_kl = standard_normal_kl(local_mean, local_var).sum() / n_images
    return ELBOTerms.from_terms(reconstruction, local_kl, local_kl_weight=beta)


def gmvae_elbo(
    x: Tensor,
    reconstruction_mean: Tensor,
    var_x: float,
    local_mean: Tensor,
    local_var: Tensor,
    mixture_probs: Tensor,
    prior_means: Tensor,
    prior_vars: Tensor,
) -> ELBOTerms:
    """GMVAE: the UG-VAE objective without the global latent, per image.

    Σ_i E_q[log p(x_i | z_i)] − Σ_i Σ_k π_ik KL(q(z_i | x_i) ‖ N(μ_k, σ²_k)) − Σ_i KL(Cat(π_i) ‖ Cat(1/K)),
    with learned ``prior_means, prior_vars [K, dim_z]`` shared by every image; ``global_kl`` is 0.
    """
    n_images = x.shape[0] * x.shape[1]
    reconstruction = reconstruction_nll(x, reconstruction_mean, var_x)
    local_kl = (
        mixture_local_kl(local_mean, local_var, mixture_probs, prior_means, prior_vars) / n_images
    )
    mixture_kl = uniform_mixture_kl(mixture_probs) / n_images
    return ELBOTerms.from_terms(reconstruction, local_kl, mixture_kl=mixture_kl)


def mlvae_elbo(
    x: Tensor,
    reconstruction_mean: Tensor,
    var_x: float,
    local_mean: Tensor,
    local_var: Tensor,
    global_mean: Tensor,
    global_var: Tensor,
) -> ELBOTerms:
    """ML-VAE: Σ_i E_q[log p(x_i | s_i, C)] − Σ_i KL(q(s_i | x_i) ‖ N(0, I)) − KL(q(C | X) ‖ N(0, I)).

    Per image; the group KL is shared by the B images of its group (as UG-VAE's global KL).
    ``mixture_kl`` is 0: no mixture.
    """
    n_images = x.shape[0] * x.shape[1]
    reconstruction = reconstruction_nll(x, reconstruction_mean, var_x)
    local_kl = standard_normal_kl(local_mean, local_var).sum() / n_images
    global_kl = standard_normal_kl(global_mean, global_var).sum() / n_images
    return ELBOTerms.from_terms(reconstruction, local_kl, global_kl=global_kl)


def neural_statistician_elbo(
    x: Tensor,
    reconstruction_mean: Tensor,
    var_x: float,
    local_mean: Tensor,
    local_var: Tensor,
    prior_mean: Tensor,
    prior_var: Tensor,
    global_mean: Tensor,
    global_var: Tensor,
) -> ELBOTerms:
    """Neural Statistician, one stochastic layer of z:
    Σ_i E_q[log p(x_i | z_i, c)] − Σ_i KL(q(z_i | x_i, c) ‖ p(z_i | c)) − KL(q(c | X) ‖ N(0, I)).

    Per image; the context KL is shared by the B images of its group (as UG-VAE's global KL).

    Args:
        local_mean, local_var: q(z_i | x_i, c) at the sampled c, ``[G, B, dim_z]``.
        prior_mean, prior_var: p(z | c) of each group's sampled c, ``[G, dim_z]``.
        global_mean, global_var: q(c | X), ``[G, dim_beta]``.

    ``mixture_kl`` is 0: no mixture.
    """
    n_images = x.shape[0] * x.shape[1]
    reconstruction = reconstruction_nll(x, reconstruction_mean, var_x)
    # KL between diagonal Gaussians: a one-component mixture (every π_i1 = 1) of p(z | c)
    local_kl = (
        mixture_local_kl(
            local_mean,
            local_var,
            local_mean.new_ones(*local_mean.shape[:-1], 1),
            prior_mean.unsqueeze(1),
            prior_var.unsqueeze(1),
        )
        / n_images
    )
    global_kl = standard_normal_kl(global_mean, global_var).sum() / n_images
    return ELBOTerms.from_terms(reconstruction, local_kl, global_kl=global_kl)
