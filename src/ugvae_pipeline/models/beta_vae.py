"""β-VAE baseline (i.i.d.): N(0, I) prior on z, KL weighted by ``beta``; groups are only batches.

Shares the encoder/decoder modules of docs/model.md §6 and the API of every model (see ``base``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ugvae_pipeline.models.base import BaseGroupVAE, iid_group_encoding, reparameterise
from ugvae_pipeline.models.config import ModelConfig
from ugvae_pipeline.models.elbo import beta_vae_elbo
from ugvae_pipeline.models.outputs import GroupEncoding, LatentNoise, ModelOutput


@dataclass(frozen=True)
class BetaVAEConfig(ModelConfig):
    """Shape, likelihood and KL weight of a β-VAE.

    Attributes:
        architecture, channels, image_size, dim_z, var_x: as in ``ModelConfig``.
        beta: weight of KL(q(z | x) ‖ N(0, I)) in the loss, >= 0 (1.0 is the plain VAE ELBO).
    """

    beta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if (
            isinstance(self.beta, bool)
            or not isinstance(self.beta, (int, float))
            or not self.beta >= 0
        ):
            raise ValueError(
                f"model.beta must be a number >= 0 (1.0 is the plain VAE), got {self.beta!r}"
            )


class BetaVAE(BaseGroupVAE):
    """β-VAE (Higgins et al. 2017) on groups ``[G, B, C, H, W]``, each image independent."""

    has_group_latent = False
    has_mixture = False
    trains_on_label_groups = False

    config: BetaVAEConfig

    def __init__(self, config: BetaVAEConfig):
        super().__init__(config)
        self._build_decoder(config.dim_z)

    @torch.no_grad()
    def encode(self, x: Tensor) -> GroupEncoding:
        """Posterior parameters; group fields are group means of the local ones (``base``)."""
        return iid_group_encoding(*self._local_posterior(self._features(x)))

    @torch.no_grad()
    def sample(
        self, n_groups: int, group_size: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Pixel means of z ~ N(0, I), ``[n_groups, group_size, C, H, W]``."""
        return self.decode(
            self._prior_draw(n_groups, group_size, self.config.dim_z, generator=generator)
        )

    def forward(self, x: Tensor, noise: LatentNoise | None = None) -> ModelOutput:
        """One reparameterised z per image (``noise.local_code`` when given)."""
        mean, var = self._local_posterior(self._features(x))
        z = reparameterise(mean, var, None if noise is None else noise.local_code)
        reconstruction = self.decode(z)
        terms = self._elbo(beta_vae_elbo, x, reconstruction, mean, var, beta=self.config.beta)
        return self._output(terms, iid_group_encoding(mean, var), z, None, reconstruction)
