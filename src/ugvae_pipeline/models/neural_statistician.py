"""Neural Statistician baseline (Edwards & Storkey 2017, "Towards a Neural Statistician").

A context c ~ N(0, I) shared by the B images of a group, and per image one stochastic layer
of z (the paper stacks several; this is the single-layer model): z_i | c ~ N(μ_z(c), σ²_z(c))
with Linear(dim_beta, 256) → ReLU → Linear(256, 2·dim_z) and the official UG-VAE variance
parameterisation σ²_z = exp(tanh(·)); x_i | z_i, c ~ N(f([z_i ; c]), var_x I).

Inference:

- the statistic network q(c | X) = N(μ_c, σ²_c), permutation invariant: UG-VAE's DeepSets
  ``SetEncoder`` on the images' features h_i (a network per image, mean pooling, a network
  after pooling to μ_c and log σ²_c);
- q(z_i | x_i, c) = N(m, exp(s)) with (m, s) = Linear(256 + dim_beta, 2·dim_z)([h_i ; c]),
  written as the base's local head on h_i plus a bias-free Linear(dim_beta, 2·dim_z) on c; c is
  the sampled context in training and μ_c when encoding.

Unsupervised like UG-VAE (trained on the same groups, never on groups formed by labels); a
comparison point whose context c is the group code, so ``dim_beta`` is its size and
``global_*`` of :class:`GroupEncoding` is q(c | X). Objective: ``elbo.neural_statistician_elbo``.
Shares the API of every model (see ``base``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from ugvae_pipeline.models.architectures import FEATURE_DIM
from ugvae_pipeline.models.base import BaseGroupVAE, reparameterise
from ugvae_pipeline.models.config import ModelConfig
from ugvae_pipeline.models.elbo import neural_statistician_elbo
from ugvae_pipeline.models.outputs import GroupEncoding, LatentNoise, ModelOutput
from ugvae_pipeline.models.ugvae import SetEncoder


@dataclass(frozen=True)
class NeuralStatisticianConfig(ModelConfig):
    """Shape and likelihood of a Neural Statistician.

    Attributes:
        architecture, channels, image_size, var_x: as in ``ModelConfig``.
        dim_z: size of the per-image latent z.
        dim_beta: size of the context c (named as UG-VAE's global latent).
    """

    dim_beta: int = 20

    integer_fields: ClassVar[tuple[str, ...]] = (*ModelConfig.integer_fields, "dim_beta")


class NeuralStatistician(BaseGroupVAE):
    """Neural Statistician on groups ``[G, B, C, H, W]``; unsupervised (groups formed without
    labels), vectorised over groups and images."""

    has_group_latent = True
    has_mixture = False
    trains_on_label_groups = False

    config: NeuralStatisticianConfig

    def __init__(self, config: NeuralStatisticianConfig):
        super().__init__(config)
        dz, db = config.dim_z, config.dim_beta
        # initialisation order: inference networks, then the generative ones
        self.statistic_network = SetEncoder(FEATURE_DIM, db, pooling="deepsets")
        self.context_to_local = nn.Linear(db, 2 * dz, bias=False)
        self.conditional_prior = nn.Sequential(
            nn.Linear(db, 256), nn.ReLU(), nn.Linear(256, 2 * dz)
        )
        self._build_decoder(dz + db)

    # -- inference ---------------------------------------------------------------------
    def _local_posterior_given(self, h: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """q(z_i | x_i, c) for features ``h [G, B, 256]`` and contexts ``[G, dim_beta]``:
        ``(mean, var)``, each ``[G, B, dim_z]``."""
        out = self.local_encoder(h) + self.context_to_local(context).unsqueeze(1)
        mean, log_var = out.chunk(2, dim=-1)
        return mean, torch.exp(log_var)

    @torch.no_grad()
    def encode(self, x: Tensor) -> GroupEncoding:
        """q(c | X) ``[G, dim_beta]``, q(z_i | x_i, c = μ_c) ``[G, B, dim_z]``, mixture_probs
        ones ``[G, B, 1]``."""
        h = self._features(x)
        context_mean, context_var = self.statistic_network(h)
        local_mean, local_var = self._local_posterior_given(h, context_mean)
        ones = local_mean.new_ones(*local_mean.shape[:-1], 1)
        return GroupEncoding(context_mean, context_var, local_mean, local_var, ones)

    # -- generation --------------------------------------------------------------------
    def local_prior(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """p(z | c) for contexts ``[G, dim_beta]``: ``(mean, var)``, each ``[G, dim_z]``."""
        mean, pre_var = self.conditional_prior(context).chunk(2, dim=-1)
        return mean, torch.exp(torch.tanh(pre_var))

    @torch.no_grad()
    def sample(
        self, n_groups: int, group_size: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """c ~ N(0, I) per group, z_i ~ p(z | c) per image; pixel means ``[G, B, C, H, W]``."""
        cfg = self.config
        context = self._prior_draw(n_groups, cfg.dim_beta, generator=generator)
        mean, var = self.local_prior(context)
        eps = self._prior_draw(n_groups, group_size, cfg.dim_z, generator=generator)
        z = torch.addcmul(mean.unsqueeze(1), eps, var.sqrt().unsqueeze(1))
        return self.decode(z, context)

    # -- training ----------------------------------------------------------------------
    def forward(self, x: Tensor, noise: LatentNoise | None = None) -> ModelOutput:
        """One reparameterised c per group (``noise.global_code``), then z_i ~ q(z_i | x_i, c)
        per image (``noise.local_code``); the loss and its terms. ``encoding.local_*`` is
        q(z | x, c) at the sampled c."""
        h = self._features(x)
        context_mean, context_var = self.statistic_network(h)
        context = reparameterise(
            context_mean, context_var, None if noise is None else noise.global_code
        )
        local_mean, local_var = self._local_posterior_given(h, context)
        z = reparameterise(local_mean, local_var, None if noise is None else noise.local_code)
        prior_mean, prior_var = self.local_prior(context)
        reconstruction = self.decode(z, context)
        terms = self._elbo(
            neural_statistician_elbo,
            x,
            reconstruction,
            local_mean,
            local_var,
            prior_mean,
            prior_var,
            context_mean,
            context_var,
        )
        ones = local_mean.new_ones(*local_mean.shape[:-1], 1)
        encoding = GroupEncoding(context_mean, context_var, local_mean, local_var, ones)
        return self._output(terms, encoding, z, context, reconstruction)
