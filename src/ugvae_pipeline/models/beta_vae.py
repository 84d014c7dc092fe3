"""β-VAE baseline (i.i.d.): N(0, I) prior on z, KL weighted by ``beta``; groups are only batches.

Shares the SPEC §5 encoder/decoder modules and UG-VAE's API (see ``group_vae``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ugvae_pipeline.models.config import ModelConfigDict, validate_shape
from ugvae_pipeline.models.elbo import beta_vae_elbo
from ugvae_pipeline.models.group_vae import GroupVAEBase, iid_group_encoding, reparameterise
from ugvae_pipeline.models.ugvae import GroupEncoding, LatentNoise, UGVAEOutput


@dataclass(frozen=True)
class BetaVAEConfig(ModelConfigDict):
    """Shape, likelihood and KL weight of a β-VAE.

    Attributes:
        architecture, channels, image_size, dim_z, var_x: as in ``UGVAEConfig``.
        beta: weight of KL(q(z | x) ‖ N(0, I)) in the loss, >= 0 (1.0 is the plain VAE ELBO).
    """

    architecture: str = "mlp28"
    channels: int = 1
    image_size: int = 28
    dim_z: int = 10
    var_x: float = 0.2
    beta: float = 1.0

    def __post_init__(self) -> None:
        validate_shape(self, ("channels", "image_size", "dim_z"))
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not self.beta >= 0:
            raise ValueError(f"model.beta must be a number >= 0 (1.0 is the plain VAE), got {self.beta!r}")


class BetaVAE(GroupVAEBase):
    """β-VAE (Higgins et al. 2017) on groups ``[G, B, C, H, W]``, each image independent."""

    def __init__(self, config: BetaVAEConfig):
        super().__init__(config, config.dim_z)

    @torch.no_grad()
    def encode(self, x: Tensor) -> GroupEncoding:
        """Posterior parameters; group fields are group means of the local ones (``group_vae``)."""
        return iid_group_encoding(*self._local_posterior(self._features(x)))

    @torch.no_grad()
    def sample(self, n_groups: int, group_size: int, generator: torch.Generator | None = None) -> Tensor:
        """Pixel means of z ~ N(0, I), ``[n_groups, group_size, C, H, W]``."""
        return self.decode(self._prior_draw(n_groups, group_size, self.config.dim_z, generator=generator))

    def forward(self, x: Tensor, noise: LatentNoise | None = None) -> UGVAEOutput:
        """One reparameterised z per image (``noise.local_code`` when given)."""
        mean, var = self._local_posterior(self._features(x))
        z = reparameterise(mean, var, None if noise is None else noise.local_code)
        reconstruction = self.decode(z)
        terms = self._objective(beta_vae_elbo, x, reconstruction, self.config.var_x, mean, var, beta=self.config.beta)
        return self._output(terms, iid_group_encoding(mean, var), z, None, reconstruction)
