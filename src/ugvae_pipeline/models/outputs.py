"""What enters and leaves every model: the posterior of a batch of groups, the noise of one
training step and the output of a forward pass. Every model returns these same types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ugvae_pipeline.models.elbo import ELBOTerms

if TYPE_CHECKING:
    from ugvae_pipeline.models.config import ModelConfig


@dataclass
class GroupEncoding:
    """Posterior parameters of G groups of B images.

    Attributes:
        global_mean, global_var: q(β | X), ``[G, dim_beta]`` (a model without a group
            latent gives the group means of the local ones, ``[G, dim_z]``).
        local_mean, local_var: q(z_i | x_i), ``[G, B, dim_z]``.
        mixture_probs: q(d_i | z_i), ``[G, B, K]`` (from the mean of z when encoding;
            ``[G, B, 1]`` of ones for a model without mixture components).
    """

    global_mean: Tensor
    global_var: Tensor
    local_mean: Tensor
    local_var: Tensor
    mixture_probs: Tensor


@dataclass
class LatentNoise:
    """The standard-normal draws of one training step, for the reparameterised samples.

    Drawn outside the model when a run must control them: data-parallel training draws the
    noise of every group of a step on every process and keeps its own groups' share, so N
    processes reproduce one process exactly; tests give two implementations the same noise.

    Attributes:
        local_code: ε of z_i = μ_z + ε σ_z, ``[G, B, dim_z]``.
        global_code: ε of β = μ_β + ε σ_β, ``[G, dim_beta]``.
    """

    local_code: Tensor
    global_code: Tensor

    @classmethod
    def draw(
        cls,
        config: ModelConfig,
        n_groups: int,
        group_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> LatentNoise:
        local = torch.randn(n_groups, group_size, config.dim_z, generator=generator, device=device)
        # models without a global latent (β-VAE, GMVAE) have no dim_beta: an empty [G, 0] draw
        dim_global = getattr(config, "dim_beta", 0)
        global_ = torch.randn(n_groups, dim_global, generator=generator, device=device)
        return cls(local, global_)

    def __getitem__(self, groups: slice) -> LatentNoise:
        """The noise of a slice of the groups."""
        return LatentNoise(self.local_code[groups], self.global_code[groups])


@dataclass
class ModelOutput:
    """What one forward pass of any model produces: the loss terms, the codes and the
    reconstructions.

    Attributes:
        terms: negative ELBO and each term, per image.
        encoding: posterior parameters (mixture_probs from the sampled z).
        local_code: sampled z, ``[G, B, dim_z]``.
        global_code: sampled β, ``[G, dim_beta]`` (an empty ``[G, 0]`` for a model without
            a group latent, so ``decode(local_code, global_code)`` decodes z alone).
        reconstruction: decoder means, ``[G, B, C, H, W]``.
        auxiliary: a training term outside the ELBO, per image, added to the training loss
            (the contrastive halves of ``model.contrastive_weight``); None: none.
    """

    terms: ELBOTerms
    encoding: GroupEncoding
    local_code: Tensor
    global_code: Tensor
    reconstruction: Tensor
    auxiliary: Tensor | None = None

    @property
    def loss(self) -> Tensor:
        return self.terms.loss
