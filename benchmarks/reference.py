"""Loop-based UG-VAE written the way the official code (ipeis/UG-VAE) is.

Two uses: the *anchor* of the benchmark (how fast the official formulation trains) and the
reference of the tests (the vectorised :class:`~ugvae_pipeline.models.UGVAE` must give the
same loss on the same weights and the same noise). It is deliberately not vectorised:

- groups are processed one at a time (the official code trains on one group per step);
- the K prior networks are K modules called in a Python loop,
  ``[self.z_prior[k](beta) for k in range(K)]``;
- the local KL is a loop over components, ``Σ_k π_k · KL(q(z) ‖ p_k)``;
- the decoder input is built one image at a time,
  ``torch.stack([torch.cat([z[i], beta]) for i in range(len(z))])``.

Do not use it for training; use :class:`~ugvae_pipeline.models.UGVAE`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ugvae_pipeline.models.architectures import ARCHITECTURES, FEATURE_DIM
from ugvae_pipeline.models.elbo import ELBOTerms
from ugvae_pipeline.models.outputs import LatentNoise
from ugvae_pipeline.models.ugvae import UGVAE, UGVAEConfig


class LoopUGVAE(nn.Module):
    """The official, loop-based UG-VAE (same parameters as :class:`UGVAE`, unstacked)."""

    def __init__(self, config: UGVAEConfig):
        super().__init__()
        self.config = config
        arch = ARCHITECTURES[config.architecture]
        k, dz, db = config.n_components, config.dim_z, config.dim_beta
        self.pre_encoder = arch.build_encoder(config.channels)
        self.local_encoder = nn.Linear(FEATURE_DIM, 2 * dz)
        self.mixture_encoder = nn.Sequential(nn.Linear(dz, 256), nn.Tanh(), nn.Linear(256, k))
        self.global_encoder = nn.Linear(FEATURE_DIM + k, 2 * db)
        self.z_prior = nn.ModuleList(
            [nn.Sequential(nn.Linear(db, 256), nn.ReLU(), nn.Linear(256, 2 * dz)) for _ in range(k)]
        )
        self.decoder = arch.build_decoder(dz + db, config.channels)

    @torch.no_grad()
    def load_from(self, model: UGVAE) -> LoopUGVAE:
        """Copy the weights of a vectorised UG-VAE (the stacked priors become K modules)."""
        if model.config != self.config:
            raise ValueError(f"configs differ: {model.config} vs {self.config}")
        for name in (
            "pre_encoder",
            "local_encoder",
            "mixture_encoder",
            "global_encoder",
            "decoder",
        ):
            getattr(self, name).load_state_dict(getattr(model, name).state_dict())
        priors = model.component_priors
        for k, net in enumerate(self.z_prior):
            # nn.Linear stores weight as [out, in]; the stacked priors store [K, in, out]
            net[0].weight.copy_(priors.weight1[k].T)
            net[0].bias.copy_(priors.bias1[k])
            net[2].weight.copy_(priors.weight2[k].T)
            net[2].bias.copy_(priors.bias2[k])
        return self

    def _group_terms(self, x: Tensor, eps_z: Tensor, eps_beta: Tensor) -> list[Tensor]:
        """Sums over one group ``x [B, C, H, W]`` of (−log-lik, local KL, mixture KL, global KL)."""
        cfg = self.config
        h = self.pre_encoder(x)
        stats = self.local_encoder(h)
        mu_z, logvar_z = stats[:, : cfg.dim_z], stats[:, cfg.dim_z :]
        var_z = torch.exp(logvar_z)
        z = mu_z + eps_z * torch.sqrt(var_z)
        pi = torch.softmax(self.mixture_encoder(z), dim=1)
        stats_beta = self.global_encoder(torch.cat([h, pi], dim=1))
        mu_b, logvar_b = stats_beta[:, : cfg.dim_beta], stats_beta[:, cfg.dim_beta :]
        precision = 1.0 / torch.exp(logvar_b)
        total_precision = torch.sum(precision, dim=0)
        if cfg.global_prior_factor:
            total_precision = total_precision + 1.0
        var_beta = 1.0 / total_precision
        mu_beta = var_beta * torch.sum(mu_b * precision, dim=0)
        beta = mu_beta + eps_beta * torch.sqrt(var_beta)

        prior_z = [self.z_prior[k](beta) for k in range(cfg.n_components)]
        mus_z = [p[: cfg.dim_z] for p in prior_z]
        vars_z = [torch.exp(torch.tanh(p[cfg.dim_z :])) for p in prior_z]

        z_beta = torch.stack([torch.cat([z[i], beta]) for i in range(len(z))])
        x_rec = self.decoder(z_beta)

        d = x[0].numel()
        sq = torch.sum((x - x_rec).pow(2).view(len(x), -1), dim=1)
        neg_log_lik = 0.5 * (d * math.log(2 * math.pi * cfg.var_x) + sq / cfg.var_x)
        local_kl = 0
        for k in range(cfg.n_components):
            kl_k = 0.5 * torch.sum(
                torch.log(vars_z[k])
                - logvar_z
                + (var_z + (mu_z - mus_z[k]).pow(2)) / vars_z[k]
                - 1,
                dim=1,
            )
            local_kl = local_kl + pi[:, k] * kl_k
        mixture_kl = torch.sum(pi * torch.log(pi * cfg.n_components + 1e-20), dim=1)
        global_kl = 0.5 * torch.sum(mu_beta.pow(2) + var_beta - 1 - torch.log(var_beta))
        return [neg_log_lik.sum(), local_kl.sum(), mixture_kl.sum(), global_kl]

    def forward(self, x: Tensor, noise: LatentNoise | None = None) -> ELBOTerms:
        """Negative ELBO per image of groups ``x [G, B, C, H, W]``, one group at a time."""
        g, b = x.shape[:2]
        if noise is None:
            noise = LatentNoise.draw(self.config, g, b, device=x.device)
        sums = [0.0, 0.0, 0.0, 0.0]
        for i in range(g):
            terms = self._group_terms(x[i], noise.local_code[i], noise.global_code[i])
            sums = [s + t for s, t in zip(sums, terms)]
        reconstruction, local_kl, mixture_kl, global_kl = (s / (g * b) for s in sums)
        return ELBOTerms.from_terms(reconstruction, local_kl, mixture_kl, global_kl)
