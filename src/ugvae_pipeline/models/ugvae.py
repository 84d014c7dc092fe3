"""UG-VAE: a VAE over groups with a global latent β and a mixture prior on local latents z.

Every method takes whole groups, ``[G, B, C, H, W]`` tensors in [0, 1]. The model is
vectorised over groups, observations and mixture components: the K prior networks are one
batched operation and the decoder input is built by broadcasting β over the group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ugvae_pipeline.models.architectures import FEATURE_DIM
from ugvae_pipeline.models.base import (
    BaseGroupVAE,
    draw_components,
    reparameterise,
    sample_components,
)
from ugvae_pipeline.models.config import ModelConfig
from ugvae_pipeline.models.elbo import halves_info_nce, product_of_gaussians, ugvae_elbo
from ugvae_pipeline.models.outputs import GroupEncoding, LatentNoise, ModelOutput

GLOBAL_ENCODERS = ("product", "deepsets", "attention")
GLOBAL_FACTOR_INPUTS = ("features_and_probs", "probs", "features")
GLOBAL_FACTOR_VARIANCES = ("per_observation", "shared")
MIXTURE_PRIORS = ("uniform", "global")


@dataclass(frozen=True)
class UGVAEConfig(ModelConfig):
    """Shape and likelihood of a UG-VAE (docs/model.md §2–6).

    Attributes:
        architecture, channels, image_size, dim_z, var_x: as in ``ModelConfig`` (``var_x``
            is the variance of p(x | z, β)).
        dim_beta: global latent size.
        n_components: K, mixture components of the local prior.
        global_prior_factor: include N(0, I) as a factor of q(β | X). The official code does
            not (``False``); with it, q(β | X) has the exact conjugate-posterior form.
        global_factor_input: what each observation's factor of q(β | X) is computed from:
            ``features_and_probs`` (official: Linear(256+K, 2·dim_beta) on [h_i ; π_i]),
            ``probs`` (Linear(K, 2·dim_beta) on π_i alone, so μ_β is a function of the
            group's soft component histogram) or ``features`` (Linear(256, 2·dim_beta) on h_i).
        global_factor_variance: ``per_observation`` (official: each factor's log-variance is
            an output of the factor network) or ``shared`` (one learned log-variance per β
            dimension for all factors, so μ_β is the plain mean of the factor means, e.g. a
            linear function of the group's mean π with ``global_factor_input: probs``).
        global_encoder: how q(β | X) pools the group: ``product`` (official: a product of one
            Gaussian factor per observation, so μ_β is a precision-weighted mean of affine
            functions of each observation's input) or a permutation-invariant set encoder that
            outputs q(β | X)'s mean and log-variance from the pooled group: ``deepsets``
            (Zaheer et al. 2017: a network per observation, mean pooling, a network after
            pooling) or ``attention`` (pooling by multi-head attention with one learned seed
            query, as in the Set Transformer, Lee et al. 2019). The set encoders read
            ``global_factor_input`` per observation; ``global_factor_variance`` does not apply
            to them and ``global_prior_factor`` must be false.
        mixture_prior: prior of the component d_i: ``uniform`` (official Cat(1/K)) or
            ``global`` (p(d_i | β) = Cat(softmax(Linear(dim_beta, K)(β))), which gives β a
            reason to encode the group's composition over the K components).
        contrastive_weight: weight of an auxiliary term that is not part of the ELBO (the
            variant "UG-VAE + contrastive halves"; 0, the paper's, leaves it out): each training
            group is cut in two halves, q(β | ·) is computed for each, and an InfoNCE loss asks
            each half's μ_β to pick out its other half among the step's groups
            (:func:`~ugvae_pipeline.models.elbo.halves_info_nce`). It rewards β for what the two
            halves of a group share and needs at least two groups per step; on random groups it
            has nothing to find.
    """

    dim_beta: int = 20
    n_components: int = 10
    global_prior_factor: bool = False
    global_encoder: str = "product"
    global_factor_input: str = "features_and_probs"
    global_factor_variance: str = "per_observation"
    mixture_prior: str = "uniform"
    contrastive_weight: float = 0.0

    integer_fields: ClassVar[tuple[str, ...]] = (
        *ModelConfig.integer_fields,
        "dim_beta",
        "n_components",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.global_prior_factor, bool):
            raise ValueError(
                f"model.global_prior_factor must be true or false, got {self.global_prior_factor!r}"
            )
        if self.global_encoder not in GLOBAL_ENCODERS:
            raise ValueError(
                f"model.global_encoder={self.global_encoder!r} is unknown; "
                f"choose one of {GLOBAL_ENCODERS}"
            )
        if self.global_encoder != "product" and self.global_prior_factor:
            raise ValueError(
                f"model.global_prior_factor=true needs model.global_encoder=product (a product "
                f"of Gaussian factors); {self.global_encoder} outputs q(beta | X) directly: "
                "set model.global_prior_factor=false"
            )
        if self.global_factor_input not in GLOBAL_FACTOR_INPUTS:
            raise ValueError(
                f"model.global_factor_input={self.global_factor_input!r} is unknown; "
                f"choose one of {GLOBAL_FACTOR_INPUTS}"
            )
        if self.global_factor_variance not in GLOBAL_FACTOR_VARIANCES:
            raise ValueError(
                f"model.global_factor_variance={self.global_factor_variance!r} is unknown; "
                f"choose one of {GLOBAL_FACTOR_VARIANCES}"
            )
        if self.mixture_prior not in MIXTURE_PRIORS:
            raise ValueError(
                f"model.mixture_prior={self.mixture_prior!r} is unknown; choose one of {MIXTURE_PRIORS}"
            )
        weight = self.contrastive_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(
                f"model.contrastive_weight must be a number >= 0 (0: the paper's ELBO alone), "
                f"got {weight!r}"
            )


class ComponentPriors(nn.Module):
    """The K prior networks β ↦ (μ_k(β), σ²_k(β)) as one batched operation.

    Each network is Linear(dim_beta, 256) → ReLU → Linear(256, 2·dim_z), with the official
    variance parameterisation σ²_k = exp(tanh(·)). Weights are stacked over k.
    """

    def __init__(self, dim_beta: int, dim_z: int, n_components: int, hidden: int = 256):
        super().__init__()
        self.dim_z = dim_z
        self.weight1 = nn.Parameter(torch.empty(n_components, dim_beta, hidden))
        self.bias1 = nn.Parameter(torch.empty(n_components, hidden))
        self.weight2 = nn.Parameter(torch.empty(n_components, hidden, 2 * dim_z))
        self.bias2 = nn.Parameter(torch.empty(n_components, 2 * dim_z))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default initialisation, per component: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        for weight, bias in ((self.weight1, self.bias1), (self.weight2, self.bias2)):
            bound = 1.0 / math.sqrt(weight.shape[1])
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def forward(self, beta: Tensor) -> tuple[Tensor, Tensor]:
        """``beta [G, dim_beta]`` → ``(means [G, K, dim_z], vars [G, K, dim_z])``."""
        k = self.weight1.shape[0]
        # one batched matmul (with its bias) per layer, batched over the K components
        hidden = F.relu(
            torch.baddbmm(self.bias1.unsqueeze(1), beta.expand(k, *beta.shape), self.weight1)
        )
        out = torch.baddbmm(self.bias2.unsqueeze(1), hidden, self.weight2).transpose(0, 1)
        mean, pre_var = out.split(self.dim_z, dim=-1)
        return mean, torch.exp(torch.tanh(pre_var))


class SetEncoder(nn.Module):
    """q(β | X) from a set, permutation-invariant: ``φ`` per observation, pooling over the
    group (the mean, or multi-head attention from one learned seed query: the Set
    Transformer's PMA, ``H = S + MHA(S, E, E)``, then ``H + rFF(H)``, each step layer-normed),
    then ``ρ`` to ``[mean; log-variance]``. Vectorised over groups and observations."""

    def __init__(self, d_in: int, dim_beta: int, pooling: str, hidden: int = 128, heads: int = 4):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.pooling = pooling
        if pooling == "attention":
            self.seed = nn.Parameter(torch.randn(1, 1, hidden) / math.sqrt(hidden))
            self.attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
            self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
            self.feedforward = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.rho = nn.Sequential(
            nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2 * dim_beta)
        )

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """``u [G, B, d_in]`` → q(β | X)'s ``(mean, variance)``, each ``[G, dim_beta]``."""
        e = self.phi(u)
        if self.pooling == "attention":
            query = self.seed.expand(len(e), -1, -1)
            h = self.norm1(query + self.attention(query, e, e, need_weights=False)[0])
            pooled = self.norm2(h + self.feedforward(h))[:, 0]
        else:
            pooled = e.mean(dim=1)
        mean, log_var = self.rho(pooled).chunk(2, dim=-1)
        return mean, log_var.exp()


class UGVAE(BaseGroupVAE):
    """Unsupervised Global VAE (docs/model.md §2–6)."""

    has_group_latent = True
    has_mixture = True
    trains_on_label_groups = False

    config: UGVAEConfig

    def __init__(self, config: UGVAEConfig):
        super().__init__(config)
        k, dz, db = config.n_components, config.dim_z, config.dim_beta
        self.mixture_encoder = nn.Sequential(nn.Linear(dz, 256), nn.Tanh(), nn.Linear(256, k))
        factor_in = {"features_and_probs": FEATURE_DIM + k, "probs": k, "features": FEATURE_DIM}
        shared = config.global_factor_variance == "shared" and config.global_encoder == "product"
        if config.global_encoder == "product":
            self.global_encoder = nn.Linear(
                factor_in[config.global_factor_input], db if shared else 2 * db
            )
        else:
            self.global_encoder = SetEncoder(
                factor_in[config.global_factor_input], db, config.global_encoder
            )
        # one log-variance per β dimension shared by every factor (None: per observation)
        self.global_factor_log_var = nn.Parameter(torch.zeros(db)) if shared else None
        self.component_priors = ComponentPriors(db, dz, k)
        # p(d | β): None is the official uniform Cat(1/K)
        self.mixture_weights = nn.Linear(db, k) if config.mixture_prior == "global" else None
        self._build_decoder(dz + db)

    # -- inference ---------------------------------------------------------------------
    def _infer(
        self, x: Tensor, sample: bool, local_noise: Tensor | None = None
    ) -> tuple[GroupEncoding, Tensor, Tensor]:
        """Posterior parameters, the local code used for π (sampled or the mean) and the input
        of q(β | X) per observation ``[G, B, ·]``."""
        h = self._features(x)
        local_mean, local_var = self._local_posterior(h)
        z = reparameterise(local_mean, local_var, local_noise) if sample else local_mean
        mixture_probs = torch.softmax(self.mixture_encoder(z), dim=-1)
        if self.config.global_factor_input == "probs":
            factor_input = mixture_probs
        elif self.config.global_factor_input == "features":
            factor_input = h
        else:  # official: [h_i ; π_i]
            factor_input = torch.cat([h, mixture_probs], dim=-1)
        global_mean, global_var = self._global_posterior(factor_input)
        encoding = GroupEncoding(global_mean, global_var, local_mean, local_var, mixture_probs)
        return encoding, z, factor_input

    def _global_posterior(self, factor_input: Tensor) -> tuple[Tensor, Tensor]:
        """q(β | X): ``(mean, var)`` ``[G, dim_beta]`` from each observation's input ``[G, B, ·]``."""
        if isinstance(self.global_encoder, SetEncoder):
            return self.global_encoder(factor_input)
        if self.global_factor_log_var is None:
            factor_mean, factor_log_var = self.global_encoder(factor_input).chunk(2, dim=-1)
        else:
            factor_mean = self.global_encoder(factor_input)
            factor_log_var = self.global_factor_log_var.expand_as(factor_mean)
        return product_of_gaussians(
            factor_mean, factor_log_var, include_prior=self.config.global_prior_factor
        )

    @torch.no_grad()
    def encode(self, x: Tensor) -> GroupEncoding:
        """Encode groups ``x [G, B, C, H, W]`` with posterior means (no sampling)."""
        return self._infer(x, sample=False)[0]

    # -- generation --------------------------------------------------------------------
    def mixture_log_prior(self, beta: Tensor) -> Tensor | None:
        """log p(d | β) ``[G, K]`` for β ``[G, dim_beta]``; ``None`` for the uniform Cat(1/K)."""
        if self.mixture_weights is None:
            return None
        return torch.log_softmax(self.mixture_weights(beta), dim=-1)

    def component_prior(self, beta: Tensor) -> tuple[Tensor, Tensor]:
        """Mixture prior of z given β ``[G, dim_beta]``: ``(means, vars)``, each ``[G, K, dim_z]``."""
        return self.component_priors(beta)

    @torch.no_grad()
    def sample(
        self,
        n_groups: int,
        group_size: int,
        generator: torch.Generator | None = None,
        component: int | None = None,
    ) -> Tensor:
        """Draw groups from the generative model: β ~ N(0, I), d_i ~ p(d | β), z_i | d_i, β.

        Returns pixel means ``[n_groups, group_size, C, H, W]``. With ``component`` set, every
        d_i is that component (to show what each mixture component generates).
        """
        cfg = self.config
        beta = self._prior_draw(n_groups, cfg.dim_beta, generator=generator)
        means, variances = self.component_priors(beta)  # [G, K, dz]
        d = draw_components(
            n_groups,
            group_size,
            cfg.n_components,
            component,
            self.mixture_log_prior(beta),
            generator,
            self._device(),
        )
        return self.decode(sample_components(means, variances, d, generator), beta)

    # -- training ----------------------------------------------------------------------
    def forward(self, x: Tensor, noise: LatentNoise | None = None) -> ModelOutput:
        """One reparameterised sample of z_i and β per group; returns the loss and its terms.

        Args:
            x: groups of images ``[G, B, C, H, W]`` in [0, 1].
            noise: the standard-normal draws to use; drawn from torch's global generator
                when omitted.
        """
        encoding, z, factor_input = self._infer(
            x, sample=True, local_noise=None if noise is None else noise.local_code
        )
        beta = reparameterise(
            encoding.global_mean, encoding.global_var, None if noise is None else noise.global_code
        )
        prior_means, prior_vars = self.component_priors(beta)
        reconstruction = self.decode(z, beta)
        terms = self._elbo(
            ugvae_elbo,
            x,
            reconstruction,
            encoding.local_mean,
            encoding.local_var,
            encoding.mixture_probs,
            prior_means,
            prior_vars,
            encoding.global_mean,
            encoding.global_var,
            mixture_log_prior=self.mixture_log_prior(beta),
        )
        output = self._output(terms, encoding, z, beta, reconstruction)
        if self.config.contrastive_weight > 0 and self.training:
            output.auxiliary = self._contrastive_halves(factor_input)
        return output

    def _contrastive_halves(self, factor_input: Tensor) -> Tensor:
        """``contrastive_weight`` times the halves' InfoNCE loss, per image (the step's mean
        InfoNCE counted once per group, like the global KL: divided by B)."""
        half = factor_input.shape[1] // 2
        first = self._global_posterior(factor_input[:, :half])[0]
        second = self._global_posterior(factor_input[:, half : 2 * half])[0]
        nce = halves_info_nce(first.float(), second.float())
        return self.config.contrastive_weight * nce / factor_input.shape[1]
