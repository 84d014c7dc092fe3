"""GMVAE baseline (i.i.d.): UG-VAE without the global latent.

p(d) = Cat(1/K), p(z | d = k) = N(μ_k, σ²_k) with learned per-component parameters (the
official variance parameterisation σ²_k = exp(tanh(·))), q(d | z) the UG-VAE mixture encoder
Linear(dim_z, 256) → Tanh → Linear(256, K). Shares UG-VAE's API (see ``group_vae``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ugvae_pipeline.models.config import ModelConfigDict, validate_shape
from ugvae_pipeline.models.elbo import gmvae_elbo
from ugvae_pipeline.models.group_vae import GroupVAEBase, iid_group_encoding, reparameterise
from ugvae_pipeline.models.ugvae import GroupEncoding, LatentNoise, UGVAEOutput, sample_components


@dataclass(frozen=True)
class GMVAEConfig(ModelConfigDict):
    """Shape and likelihood of a GMVAE: fields as in ``UGVAEConfig`` (no global latent)."""

    architecture: str = "mlp28"
    channels: int = 1
    image_size: int = 28
    dim_z: int = 10
    n_components: int = 10
    var_x: float = 0.2

    def __post_init__(self) -> None:
        validate_shape(self, ("channels", "image_size", "dim_z", "n_components"))


class GMVAE(GroupVAEBase):
    """Gaussian-mixture VAE on groups ``[G, B, C, H, W]``, each image independent."""

    def __init__(self, config: GMVAEConfig):
        super().__init__(config, config.dim_z)
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
        """Posterior parameters, π from the mean of z; group fields as in ``group_vae``."""
        mean, var = self._local_posterior(self._features(x))
        return iid_group_encoding(mean, var, self._mixture_probs(mean))

    @torch.no_grad()
    def sample(
        self, n_groups: int, group_size: int, generator: torch.Generator | None = None,
        component: int | None = None,
    ) -> Tensor:
        """d ~ Cat(1/K) (or every d = ``component``), z | d; pixel means ``[G, B, C, H, W]``."""
        k = self.config.n_components
        device = self._device()
        if component is None:
            d = torch.randint(k, (n_groups, group_size), generator=generator, device=device)
        elif not 0 <= component < k:
            raise ValueError(f"component must be in [0, {k}), got {component}")
        else:
            d = torch.full((n_groups, group_size), component, device=device)
        means, variances = self.component_prior()
        shape = (n_groups, *means.shape)
        return self.decode(sample_components(means.expand(shape), variances.expand(shape), d, generator))

    def forward(self, x: Tensor, noise: LatentNoise | None = None) -> UGVAEOutput:
        """One reparameterised z per image (``noise.local_code`` when given); π from that z."""
        mean, var = self._local_posterior(self._features(x))
        z = reparameterise(mean, var, None if noise is None else noise.local_code)
        probs = self._mixture_probs(z)
        reconstruction = self.decode(z)
        prior_means, prior_vars = self.component_prior()
        terms = self._objective(
            gmvae_elbo, x, reconstruction, self.config.var_x, mean, var, probs, prior_means, prior_vars
        )
        return self._output(terms, iid_group_encoding(mean, var, probs), z, None, reconstruction)
