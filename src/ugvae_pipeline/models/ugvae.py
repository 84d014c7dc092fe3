"""UG-VAE: a VAE over groups with a global latent β and a mixture prior on local latents z.

Every method takes whole groups, ``[G, B, C, H, W]`` tensors in [0, 1]. The model is
vectorised over groups, observations and mixture components: the K prior networks are one
batched operation and the decoder input is built by broadcasting β over the group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ugvae_pipeline.models.architectures import ARCHITECTURES, FEATURE_DIM
from ugvae_pipeline.models.config import UGVAEConfig
from ugvae_pipeline.models.elbo import ELBOTerms, product_of_gaussians, ugvae_elbo


@dataclass
class GroupEncoding:
    """Posterior parameters of G groups of B images.

    Attributes:
        global_mean, global_var: q(β | X), ``[G, dim_beta]``.
        local_mean, local_var: q(z_i | x_i), ``[G, B, dim_z]``.
        mixture_probs: q(d_i | z_i), ``[G, B, K]`` (from the mean of z when encoding).
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
        config: UGVAEConfig,
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
class UGVAEOutput:
    """What one forward pass produces: the loss terms, the codes and the reconstructions.

    Attributes:
        terms: negative ELBO and each term, per image.
        encoding: posterior parameters (mixture_probs from the sampled z).
        local_code: sampled z, ``[G, B, dim_z]``.
        global_code: sampled β, ``[G, dim_beta]``.
        reconstruction: decoder means, ``[G, B, C, H, W]``.
    """

    terms: ELBOTerms
    encoding: GroupEncoding
    local_code: Tensor
    global_code: Tensor
    reconstruction: Tensor

    @property
    def loss(self) -> Tensor:
        return self.terms.loss


def check_groups(x: Tensor, channels: int, image_size: int) -> None:
    """Refuse anything but groups of images ``[G, B, channels, image_size, image_size]``."""
    c, s = channels, image_size
    if x.dim() != 5 or tuple(x.shape[2:]) != (c, s, s):
        raise ValueError(f"expected groups of images shaped [G, B, {c}, {s}, {s}], got {list(x.shape)}")


def decode_codes(decoder: nn.Module, z: Tensor, beta: Tensor | None = None) -> Tensor:
    """Pixel means ``decoder([z ; β])`` for codes ``z [..., dim_z]``; β ``[G, dim_beta]`` is
    broadcast over the group, ``[G, B, dim_beta]`` is used as is, ``None`` decodes z alone."""
    if beta is not None:
        if beta.dim() == z.dim() - 1:
            beta = beta.unsqueeze(-2).expand(*z.shape[:-1], beta.shape[-1])
        z = torch.cat([z, beta], dim=-1)
    out = decoder(z.flatten(0, -2))
    return out.view(*z.shape[:-1], *out.shape[1:])


def sample_components(
    means: Tensor, variances: Tensor, d: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """z ~ N(μ_d, σ²_d) for component indices ``d [G, B]`` of ``means, variances [G, K, D]``."""
    index = d.unsqueeze(-1).expand(-1, -1, means.shape[-1])
    mean = means.gather(1, index)
    std = variances.gather(1, index).sqrt()
    return mean + torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype) * std


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
        hidden = F.relu(torch.baddbmm(self.bias1.unsqueeze(1), beta.expand(k, *beta.shape), self.weight1))
        out = torch.baddbmm(self.bias2.unsqueeze(1), hidden, self.weight2).transpose(0, 1)
        mean, pre_var = out.split(self.dim_z, dim=-1)
        return mean, torch.exp(torch.tanh(pre_var))


class UGVAE(nn.Module):
    """Unsupervised Global VAE (``../shared/SPEC.md`` §2–5)."""

    def __init__(self, config: UGVAEConfig):
        super().__init__()
        self.config = config
        arch = ARCHITECTURES[config.architecture]
        k, dz, db = config.n_components, config.dim_z, config.dim_beta
        self.pre_encoder = arch.build_encoder(config.channels)
        self.local_encoder = nn.Linear(FEATURE_DIM, 2 * dz)
        self.mixture_encoder = nn.Sequential(nn.Linear(dz, 256), nn.Tanh(), nn.Linear(256, k))
        factor_in = {"features_and_probs": FEATURE_DIM + k, "probs": k, "features": FEATURE_DIM}
        shared = config.global_factor_variance == "shared"
        self.global_encoder = nn.Linear(factor_in[config.global_factor_input], db if shared else 2 * db)
        # one log-variance per β dimension shared by every factor (None: per observation)
        self.global_factor_log_var = nn.Parameter(torch.zeros(db)) if shared else None
        self.component_priors = ComponentPriors(db, dz, k)
        # p(d | β): None is the official uniform Cat(1/K)
        self.mixture_weights = nn.Linear(db, k) if config.mixture_prior == "global" else None
        self.decoder = arch.build_decoder(dz + db, config.channels)

    # -- inference ---------------------------------------------------------------------
    def _check_groups(self, x: Tensor) -> None:
        check_groups(x, self.config.channels, self.config.image_size)

    def _infer(
        self, x: Tensor, sample: bool, local_noise: Tensor | None = None
    ) -> tuple[GroupEncoding, Tensor]:
        """Posterior parameters and the local code used for π (sampled or the mean)."""
        self._check_groups(x)
        g, b = x.shape[:2]
        h = self.pre_encoder(x.flatten(0, 1)).view(g, b, FEATURE_DIM)
        local_mean, local_log_var = self.local_encoder(h).chunk(2, dim=-1)
        local_var = torch.exp(local_log_var)
        if sample:
            eps = torch.randn_like(local_mean) if local_noise is None else local_noise
            z = torch.addcmul(local_mean, eps, local_var.sqrt())
        else:
            z = local_mean
        mixture_probs = torch.softmax(self.mixture_encoder(z), dim=-1)
        if self.config.global_factor_input == "probs":
            factor_input = mixture_probs
        elif self.config.global_factor_input == "features":
            factor_input = h
        else:  # official: [h_i ; π_i]
            factor_input = torch.cat([h, mixture_probs], dim=-1)
        if self.global_factor_log_var is None:
            factor_mean, factor_log_var = self.global_encoder(factor_input).chunk(2, dim=-1)
        else:
            factor_mean = self.global_encoder(factor_input)
            factor_log_var = self.global_factor_log_var.expand_as(factor_mean)
        global_mean, global_var = product_of_gaussians(
            factor_mean, factor_log_var, include_prior=self.config.global_prior_factor
        )
        encoding = GroupEncoding(global_mean, global_var, local_mean, local_var, mixture_probs)
        return encoding, z

    @torch.no_grad()
    def encode(self, x: Tensor) -> GroupEncoding:
        """Encode groups ``x [G, B, C, H, W]`` with posterior means (no sampling)."""
        return self._infer(x, sample=False)[0]

    # -- generation --------------------------------------------------------------------
    def decode(self, z: Tensor, beta: Tensor) -> Tensor:
        """Pixel means f([z ; β]).

        Args:
            z: local codes ``[G, B, dim_z]``.
            beta: global codes ``[G, dim_beta]`` (broadcast over the group) or ``[G, B, dim_beta]``.

        Returns:
            ``[G, B, C, H, W]`` in (0, 1).
        """
        return decode_codes(self.decoder, z, beta)

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
        device = next(self.parameters()).device
        beta = torch.randn(n_groups, cfg.dim_beta, generator=generator, device=device)
        means, variances = self.component_priors(beta)  # [G, K, dz]
        log_prior = self.mixture_log_prior(beta)
        if component is None and log_prior is None:
            d = torch.randint(
                cfg.n_components, (n_groups, group_size), generator=generator, device=device
            )
        elif component is None:
            d = torch.multinomial(log_prior.exp(), group_size, replacement=True, generator=generator)
        else:
            if not 0 <= component < cfg.n_components:
                raise ValueError(f"component must be in [0, {cfg.n_components}), got {component}")
            d = torch.full((n_groups, group_size), component, device=device)
        return self.decode(sample_components(means, variances, d, generator), beta)

    # -- training ----------------------------------------------------------------------
    def forward(self, x: Tensor, noise: LatentNoise | None = None) -> UGVAEOutput:
        """One reparameterised sample of z_i and β per group; returns the loss and its terms.

        Args:
            x: groups of images ``[G, B, C, H, W]`` in [0, 1].
            noise: the standard-normal draws to use; drawn from torch's global generator
                when omitted.
        """
        encoding, z = self._infer(x, sample=True, local_noise=None if noise is None else noise.local_code)
        eps = torch.randn_like(encoding.global_mean) if noise is None else noise.global_code
        beta = torch.addcmul(encoding.global_mean, eps, encoding.global_var.sqrt())
        prior_means, prior_vars = self.component_priors(beta)
        reconstruction = self.decode(z, beta)
        inputs = (
            x, reconstruction, encoding.local_mean, encoding.local_var, encoding.mixture_probs,
            prior_means, prior_vars, encoding.global_mean, encoding.global_var,
        )
        log_prior = self.mixture_log_prior(beta)
        if torch.is_autocast_enabled(x.device.type):
            # the objective in fp32 even when the networks run in bf16
            with torch.autocast(x.device.type, enabled=False):
                inputs = tuple(t.float() for t in inputs)
                log_prior = None if log_prior is None else log_prior.float()
                terms = ugvae_elbo(*inputs[:2], self.config.var_x, *inputs[2:], mixture_log_prior=log_prior)
        else:
            terms = ugvae_elbo(*inputs[:2], self.config.var_x, *inputs[2:], mixture_log_prior=log_prior)
        return UGVAEOutput(terms, encoding, z, beta, reconstruction)

    def loss(self, x: Tensor, noise: LatentNoise | None = None) -> ELBOTerms:
        """Negative ELBO per image and each of its terms, for groups ``x [G, B, C, H, W]``."""
        return self.forward(x, noise).terms
