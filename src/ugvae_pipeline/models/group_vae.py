"""What the baselines (β-VAE, GMVAE, ML-VAE) share: the SPEC §5 encoder/decoder modules and
UG-VAE's public API on groups ``[G, B, C, H, W]``.

Every model has ``encode(x) -> GroupEncoding``, ``decode(z, beta=None)``, ``sample(n_groups,
group_size, generator=None)``, ``forward(x, noise=None) -> UGVAEOutput`` (``.terms`` is an
:class:`ELBOTerms`, per image) and ``loss(x, noise=None)``.

For the i.i.d. models (no group latent) the group fields of :class:`GroupEncoding` are
summaries of the local posteriors: ``global_mean`` is the mean over the group of the local
means and ``global_var`` the mean over the group of the local variances (both
``[G, dim_z]``); ``mixture_probs`` is ``[G, B, 1]`` of ones for models without a mixture.
Their sampled ``global_code`` is an empty ``[G, 0]`` tensor (so ``decode(z, global_code)``
decodes z alone, as for every model).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from ugvae_pipeline.models.architectures import ARCHITECTURES, FEATURE_DIM
from ugvae_pipeline.models.elbo import ELBOTerms
from ugvae_pipeline.models.ugvae import (
    GroupEncoding,
    LatentNoise,
    UGVAEOutput,
    check_groups,
    decode_codes,
)


def iid_group_encoding(
    local_mean: Tensor, local_var: Tensor, mixture_probs: Tensor | None = None
) -> GroupEncoding:
    """A :class:`GroupEncoding` for an i.i.d. model: group fields are the group means of the
    local means and local variances; ``mixture_probs`` defaults to ``[G, B, 1]`` of ones."""
    if mixture_probs is None:
        mixture_probs = local_mean.new_ones(*local_mean.shape[:-1], 1)
    return GroupEncoding(local_mean.mean(1), local_var.mean(1), local_mean, local_var, mixture_probs)


def reparameterise(mean: Tensor, var: Tensor, noise: Tensor | None) -> Tensor:
    """mean + ε·sqrt(var), ε the given standard-normal ``noise`` or a fresh draw."""
    eps = torch.randn_like(mean) if noise is None else noise
    return torch.addcmul(mean, eps, var.sqrt())


class GroupVAEBase(nn.Module):
    """Pre-encoder h = E(x), local head q(z | x) = N(m(h), exp(s(h))) and decoder f, built
    from the ``ARCHITECTURES`` registry exactly as in UG-VAE."""

    def __init__(self, config: Any, decoder_input: int):
        super().__init__()
        self.config = config
        arch = ARCHITECTURES[config.architecture]
        self.pre_encoder = arch.build_encoder(config.channels)
        self.local_encoder = nn.Linear(FEATURE_DIM, 2 * config.dim_z)
        self.decoder = arch.build_decoder(decoder_input, config.channels)

    def _features(self, x: Tensor) -> Tensor:
        """``x [G, B, C, H, W]`` → features ``[G, B, 256]``."""
        check_groups(x, self.config.channels, self.config.image_size)
        g, b = x.shape[:2]
        return self.pre_encoder(x.flatten(0, 1)).view(g, b, FEATURE_DIM)

    def _local_posterior(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """q(z_i | x_i): ``(mean, var)``, each ``[G, B, dim_z]``."""
        mean, log_var = self.local_encoder(h).chunk(2, dim=-1)
        return mean, torch.exp(log_var)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _prior_draw(self, *shape: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard-normal draws on the model's device, in its dtype."""
        weight = next(self.parameters())
        return torch.randn(shape, generator=generator, device=weight.device, dtype=weight.dtype)

    def decode(self, z: Tensor, beta: Tensor | None = None) -> Tensor:
        """Pixel means ``[G, B, C, H, W]`` of codes ``z [G, B, dim_z]`` (and a group code β)."""
        return decode_codes(self.decoder, z, beta)

    def loss(self, x: Tensor, noise: LatentNoise | None = None) -> ELBOTerms:
        """Negative ELBO per image and each of its terms, for groups ``x [G, B, C, H, W]``."""
        return self.forward(x, noise).terms

    @staticmethod
    def _objective(
        elbo: Callable[..., ELBOTerms], x: Tensor, reconstruction: Tensor, var_x: float,
        *tensors: Tensor, **options: Any,
    ) -> ELBOTerms:
        """``elbo(x, reconstruction, var_x, *tensors)`` in fp32 even when the networks run in bf16."""
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return elbo(x.float(), reconstruction.float(), var_x, *(t.float() for t in tensors), **options)
        return elbo(x, reconstruction, var_x, *tensors, **options)

    @staticmethod
    def _output(
        terms: ELBOTerms, encoding: GroupEncoding, z: Tensor, global_code: Tensor | None, reconstruction: Tensor
    ) -> UGVAEOutput:
        if global_code is None:  # i.i.d. model: an empty group code
            global_code = z.new_zeros(z.shape[0], 0)
        return UGVAEOutput(terms, encoding, z, global_code, reconstruction)
