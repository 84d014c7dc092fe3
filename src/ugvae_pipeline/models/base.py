"""The base of every model (UG-VAE, β-VAE, GMVAE, ML-VAE, Neural Statistician): the
encoder/decoder modules of docs/model.md §6, built from ``ARCHITECTURES``, and the API every
model has on groups of images ``x [G, B, C, H, W]`` in [0, 1]:

``encode(x) -> GroupEncoding``, ``decode(z, beta=None)``, ``reconstruct(x)``,
``sample(n_groups, group_size, generator=None)``, ``forward(x, noise=None) -> ModelOutput``
(``.terms`` is an :class:`ELBOTerms`, per image) and ``loss(x, noise=None)``.

What sets a model apart is declared on its class, so callers ask the model (or its class,
``registry.model_class(name)``) rather than compare names:

- ``has_group_latent``: a latent shared by the images of a group (UG-VAE's β, ML-VAE's C,
  the Neural Statistician's context c);
  the model's group code is its posterior mean. The others are scored by the mean of the
  group's local codes.
- ``has_mixture``: mixture components of the local prior (``config.n_components``,
  ``component_prior``, ``sample(..., component=k)``).
- ``trains_on_label_groups``: weakly supervised, trained on groups formed by labels.

For the models without a group latent the group fields of :class:`GroupEncoding` are
summaries of the local posteriors: ``global_mean`` is the mean over the group of the local
means and ``global_var`` the mean over the group of the local variances (both
``[G, dim_z]``); ``mixture_probs`` is ``[G, B, 1]`` of ones for models without a mixture.
Their sampled ``global_code`` is an empty ``[G, 0]`` tensor (so ``decode(z, global_code)``
decodes z alone, as for every model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ugvae_pipeline.models.architectures import ARCHITECTURES, FEATURE_DIM
from ugvae_pipeline.models.config import ModelConfig
from ugvae_pipeline.models.elbo import ELBOTerms
from ugvae_pipeline.models.outputs import GroupEncoding, LatentNoise, ModelOutput


def reparameterise(mean: Tensor, var: Tensor, noise: Tensor | None) -> Tensor:
    """mean + ε·sqrt(var), ε the given standard-normal ``noise`` or a fresh draw."""
    eps = torch.randn_like(mean) if noise is None else noise
    return torch.addcmul(mean, eps, var.sqrt())


def iid_group_encoding(
    local_mean: Tensor, local_var: Tensor, mixture_probs: Tensor | None = None
) -> GroupEncoding:
    """A :class:`GroupEncoding` for a model without a group latent: group fields are the group
    means of the local means and local variances; ``mixture_probs`` defaults to ``[G, B, 1]``
    of ones."""
    if mixture_probs is None:
        mixture_probs = local_mean.new_ones(*local_mean.shape[:-1], 1)
    return GroupEncoding(
        local_mean.mean(1), local_var.mean(1), local_mean, local_var, mixture_probs
    )


def draw_components(
    n_groups: int,
    group_size: int,
    n_components: int,
    component: int | None = None,
    log_prior: Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Component indices d ``[n_groups, group_size]`` of a mixture model: every d =
    ``component`` when it is set, else d ~ Cat(exp(log_prior)) for a prior log p(d)
    ``[n_groups, K]``, else d ~ Cat(1/K)."""
    if component is not None:
        if not 0 <= component < n_components:
            raise ValueError(f"component must be in [0, {n_components}), got {component}")
        return torch.full((n_groups, group_size), component, device=device)
    if log_prior is not None:
        return torch.multinomial(log_prior.exp(), group_size, replacement=True, generator=generator)
    return torch.randint(n_components, (n_groups, group_size), generator=generator, device=device)


def sample_components(
    means: Tensor, variances: Tensor, d: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """z ~ N(μ_d, σ²_d) for component indices ``d [G, B]`` of ``means, variances [G, K, D]``."""
    index = d.unsqueeze(-1).expand(-1, -1, means.shape[-1])
    mean = means.gather(1, index)
    std = variances.gather(1, index).sqrt()
    return (
        mean
        + torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype) * std
    )


class BaseGroupVAE(nn.Module):
    """Pre-encoder h = E(x) ``[G, B, 256]``, local head q(z | x) = N(m(h), exp(s(h))) and
    decoder f, built from the ``ARCHITECTURES`` entry of ``config.architecture``.

    A model's ``__init__`` calls ``super().__init__(config)`` (pre-encoder and local head),
    builds its own networks and calls :meth:`_build_decoder` where its initialisation order
    puts the decoder (the order of the random draws that initialise the weights, so that a
    seeded model always gets the same weights). A model class declares the three
    capabilities ``has_group_latent``, ``has_mixture`` and ``trains_on_label_groups``.
    """

    has_group_latent: ClassVar[bool]
    has_mixture: ClassVar[bool]
    trains_on_label_groups: ClassVar[bool]

    config: ModelConfig
    decoder: nn.Module

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.pre_encoder = ARCHITECTURES[config.architecture].build_encoder(config.channels)
        self.local_encoder = nn.Linear(FEATURE_DIM, 2 * config.dim_z)

    def _build_decoder(self, dim_in: int) -> None:
        """The decoder f: codes ``[N, dim_in]`` → pixel means ``[N, C, H, W]`` in (0, 1)."""
        self.decoder = ARCHITECTURES[self.config.architecture].build_decoder(
            dim_in, self.config.channels
        )

    # -- inference ---------------------------------------------------------------------
    def _features(self, x: Tensor) -> Tensor:
        """``x [G, B, C, H, W]`` → features ``[G, B, 256]``; anything but groups of the
        configured images is refused."""
        c, s = self.config.channels, self.config.image_size
        if x.dim() != 5 or tuple(x.shape[2:]) != (c, s, s):
            raise ValueError(
                f"expected groups of images shaped [G, B, {c}, {s}, {s}], got {list(x.shape)}"
            )
        g, b = x.shape[:2]
        return self.pre_encoder(x.flatten(0, 1)).view(g, b, FEATURE_DIM)

    def _local_posterior(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """q(z_i | x_i): ``(mean, var)``, each ``[G, B, dim_z]``."""
        mean, log_var = self.local_encoder(h).chunk(2, dim=-1)
        return mean, torch.exp(log_var)

    def encode(self, x: Tensor) -> GroupEncoding:
        """Posterior parameters of groups ``x [G, B, C, H, W]`` from posterior means (no
        sampling, no gradients)."""
        raise NotImplementedError

    # -- generation --------------------------------------------------------------------
    def decode(self, z: Tensor, beta: Tensor | None = None) -> Tensor:
        """Pixel means f([z ; β]).

        Args:
            z: local codes ``[G, B, dim_z]``.
            beta: group codes ``[G, dim_beta]`` (broadcast over the group) or
                ``[G, B, dim_beta]``; ``None`` (or an empty ``[G, 0]``) decodes z alone.

        Returns:
            ``[G, B, C, H, W]`` in (0, 1).
        """
        if beta is not None:
            if beta.dim() == z.dim() - 1:
                beta = beta.unsqueeze(-2).expand(*z.shape[:-1], beta.shape[-1])
            z = torch.cat([z, beta], dim=-1)
        out = self.decoder(z.flatten(0, -2))
        return out.view(*z.shape[:-1], *out.shape[1:])

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Pixel means ``[G, B, C, H, W]`` decoded from the posterior means of groups
        ``x [G, B, C, H, W]`` (with the group code when the model has a group latent)."""
        encoding = self.encode(x)
        return self.decode(
            encoding.local_mean, encoding.global_mean if self.has_group_latent else None
        )

    def sample(
        self, n_groups: int, group_size: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Pixel means ``[n_groups, group_size, C, H, W]`` of codes drawn from the prior."""
        raise NotImplementedError

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _prior_draw(self, *shape: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard-normal draws on the model's device, in its dtype."""
        weight = next(self.parameters())
        return torch.randn(shape, generator=generator, device=weight.device, dtype=weight.dtype)

    # -- training ----------------------------------------------------------------------
    def forward(self, x: Tensor, noise: LatentNoise | None = None) -> ModelOutput:
        """One reparameterised sample of the latents of groups ``x [G, B, C, H, W]``; the loss
        and its terms. ``noise``: the standard-normal draws to use (drawn from torch's
        global generator when omitted)."""
        raise NotImplementedError

    def loss(self, x: Tensor, noise: LatentNoise | None = None) -> ELBOTerms:
        """Negative ELBO per image and each of its terms, for groups ``x [G, B, C, H, W]``."""
        return self.forward(x, noise).terms

    def _elbo(
        self,
        elbo: Callable[..., ELBOTerms],
        x: Tensor,
        reconstruction: Tensor,
        *tensors: Tensor,
        **options: Any,
    ) -> ELBOTerms:
        """``elbo(x, reconstruction, config.var_x, *tensors, **options)``, in fp32 even when the
        networks run in bf16 (tensor ``options`` included)."""
        var_x = self.config.var_x
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                options = {
                    key: value.float() if isinstance(value, Tensor) else value
                    for key, value in options.items()
                }
                return elbo(
                    x.float(),
                    reconstruction.float(),
                    var_x,
                    *(t.float() for t in tensors),
                    **options,
                )
        return elbo(x, reconstruction, var_x, *tensors, **options)

    @staticmethod
    def _output(
        terms: ELBOTerms,
        encoding: GroupEncoding,
        z: Tensor,
        global_code: Tensor | None,
        reconstruction: Tensor,
    ) -> ModelOutput:
        if global_code is None:  # no group latent: an empty group code
            global_code = z.new_zeros(z.shape[0], 0)
        return ModelOutput(terms, encoding, z, global_code, reconstruction)
