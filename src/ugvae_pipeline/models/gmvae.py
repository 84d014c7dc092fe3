"""GMVAE baseline (i.i.d.): UG-VAE without the global latent.

p(d) = Cat(1/K), p(z | d = k) = N(μ_k, σ²_k) with learned per-component parameters (the
official variance parameterisation σ²_k = exp(tanh(·))), q(d | z) the UG-VAE mixture encoder
Linear(dim_z, 256) → Tanh → Linear(256, K). Shares the API of every model (see ``base``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from ugvae_pipeline.models.base import (
    BaseGroupVAE,
    draw_components,
    iid_group_encoding,
    reparameterise,
    sample_components,
)
from ugvae_pipeline.models.config import ModelConfig
from ugvae_pipeline.models.elbo import gmvae_elbo
from ugvae_pipeline.models.outputs import GroupEncoding, LatentNoise, ModelOutput


@dataclass(frozen=True)
class GMVAEConfig(ModelConfig):
    """Shape and likelihood of a GMVAE: the fields of ``ModelConfig`` and, as in
    ``UGVAEConfig``, ``n_components`` (no global latent)."""

    n_components: int = 10

    integer_fields: ClassVar[tuple[str, ...]] = (*ModelConfig.integer_fields, "n_components")


class GMVAE(BaseGroupVAE):
    """Gaussian-mixture VAE on groups ``[G, B, C, H, W]``, each image independent."""

    has_group_latent = False
    has_mixture = True
    trains_on_label_groups = False

    config: GMVAEConfig

    def __init__(self, config: GMVAEConfig):
        super().__init__(config)
        self._build_decoder(config.dim_z)
        k, dz = config.n_components, config.dim_z
        self.mixture_encoder = nn.Sequential(nn.Linear(dz, 256), nn.Tanh(), nn.Linear(256, k))
        # distinct component means at initialisation (identical ones would never separate)
        self.prior_means = nn.Parameter(torch.randn(k, dz))
        self.prior_pre_vars = nn.Parameter(torch.zeros(k, dz))

    def component_prior(self) -> tuple[Tensor, Tensor]:
        """``(means, vars)`` of p(z | d = k), each ``[K, dim_z]``."""
        return self.prior_means, torch.exp(torch.tanh(self.prior_pre_vars))

    def _mixture_probs(self, z: Tensor) -> Tensor:
        return torch.softmax(self.mixture_encoder(z), dim=-1)

    @torch.no_grad()
    def encode(self, x: Tensor) -> GroupEncoding:
        """Posterior parameters, π from the mean of z; group fields as in ``base``."""
        mean, var = self._local_posterior(self._features(x))
        return iid_group_encoding(mean, var, self._mixture_probs(mean))

    @torch.no_grad()
    def sample(
        self,
        n_groups: int,
        group_size: int,
        generator: torch.Generator | None = None,
        component: int | None = None,
    ) -> Tensor:
        """d ~ Cat(1/K) (or every d = ``component``), z | d; pixel means ``[G, B, C, H, W]``."""
        d = draw_components(
            n_groups,
            group_size,
            self.config.n_components,
            component,
            generator=generator,
            device=self._device(),
        )
        means, variances = self.component_prior()
        shape = (n_groups, *means.shape)
        return self.decode(
            sample_components(means.expand(shape), variances.expand(shape), d, generator)
        )

    def forward(self, x: Tensor, noise: LatentNoise | None = None) -> ModelOutput:
        """One reparameterised z per image (``noise.local_code`` when given); π from that z."""
        mean, var = self._local_posterior(self._features(x))
        z = reparameterise(mean, var, None if noise is None else noise.local_code)
        probs = self._mixture_probs(z)
        reconstruction = self.decode(z)
        prior_means, prior_vars = self.component_prior()
        terms = self._elbo(gmvae_elbo, x, reconstruction, mean, var, probs, prior_means, prior_vars)
        return self._output(terms, iid_group_encoding(mean, var, probs), z, None, reconstruction)
