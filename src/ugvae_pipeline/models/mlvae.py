"""ML-VAE baseline (Bouchacourt, Tomioka & Nowozin 2018, "Multi-Level Variational Autoencoder").

A group content latent C ~ N(0, I) shared by the B images of a group and a style latent
s_i ~ N(0, I) per image; x_i | s_i, C ~ N(f([s_i ; C]), var_x I). q(C | X) is the product of
per-observation Gaussian factors Linear(256, 2·dim_beta)(h_i) (``elbo.product_of_gaussians``),
q(s_i | x_i) the UG-VAE local head.

ML-VAE is a weakly supervised model: it is meant to be trained on groups formed by labels
(every image of a group shares the factor C should capture), unlike UG-VAE, whose groups
may be random. Trained on random groups it is a comparison point, not its intended use.
Shares the API of every model (see ``base``): ``global_*`` is q(C | X), ``local_*`` q(s | x).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from ugvae_pipeline.models.architectures import FEATURE_DIM
from ugvae_pipeline.models.base import BaseGroupVAE, reparameterise
from ugvae_pipeline.models.config import ModelConfig
from ugvae_pipeline.models.elbo import mlvae_elbo, product_of_gaussians
from ugvae_pipeline.models.outputs import GroupEncoding, LatentNoise, ModelOutput


@dataclass(frozen=True)
class MLVAEConfig(ModelConfig):
    """Shape and likelihood of an ML-VAE.

    Attributes:
        architecture, channels, image_size, var_x: as in ``ModelConfig``.
        dim_z: size of the per-image style latent s.
        dim_beta: size of the group content latent C (named as UG-VAE's global latent).
    """

    dim_beta: int = 20

    integer_fields: ClassVar[tuple[str, ...]] = (*ModelConfig.integer_fields, "dim_beta")


class MLVAE(BaseGroupVAE):
    """ML-VAE on groups ``[G, B, C, H, W]``; weakly supervised (groups formed by labels)."""

    has_group_latent = True
    has_mixture = False
    trains_on_label_groups = True

    config: MLVAEConfig

    def __init__(self, config: MLVAEConfig):
        super().__init__(config)
        self._build_decoder(config.dim_z + config.dim_beta)
        self.group_encoder = nn.Linear(FEATURE_DIM, 2 * config.dim_beta)

    def _infer(self, x: Tensor) -> GroupEncoding:
        h = self._features(x)
        local_mean, local_var = self._local_posterior(h)
        factor_mean, factor_log_var = self.group_encoder(h).chunk(2, dim=-1)
        group_mean, group_var = product_of_gaussians(factor_mean, factor_log_var)
        ones = local_mean.new_ones(*local_mean.shape[:-1], 1)
        return GroupEncoding(group_mean, group_var, local_mean, local_var, ones)

    @torch.no_grad()
    def encode(self, x: Tensor) -> GroupEncoding:
        """q(C | X) ``[G, dim_beta]``, q(s_i | x_i) ``[G, B, dim_z]``, mixture_probs ones ``[G, B, 1]``."""
        return self._infer(x)

    @torch.no_grad()
    def sample(
        self, n_groups: int, group_size: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """C ~ N(0, I) per group, s_i ~ N(0, I) per image; pixel means ``[G, B, C, H, W]``."""
        content = self._prior_draw(n_groups, self.config.dim_beta, generator=generator)
        style = self._prior_draw(n_groups, group_size, self.config.dim_z, generator=generator)
        return self.decode(style, content)

    def forward(self, x: Tensor, noise: LatentNoise | None = None) -> ModelOutput:
        """One reparameterised s per image and C per group (``noise.local_code``/``global_code``)."""
        enc = self._infer(x)
        style = reparameterise(
            enc.local_mean, enc.local_var, None if noise is None else noise.local_code
        )
        content = reparameterise(
            enc.global_mean, enc.global_var, None if noise is None else noise.global_code
        )
        reconstruction = self.decode(style, content)
        terms = self._elbo(
            mlvae_elbo,
            x,
            reconstruction,
            enc.local_mean,
            enc.local_var,
            enc.global_mean,
            enc.global_var,
        )
        return self._output(terms, enc, style, content, reconstruction)
