"""The ELBO against an independent computation built from torch.distributions."""

import math

import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

from ugvae_pipeline.models import UGVAE, UGVAEConfig, product_of_gaussians
from ugvae_pipeline.models.elbo import categorical_kl, categorical_uniform_kl, uniform_mixture_kl

CONFIGS = {
    "mlp28": UGVAEConfig(architecture="mlp28", image_size=28, dim_z=4, dim_beta=3, n_components=5),
    "conv28": UGVAEConfig(
        architecture="conv28", image_size=28, dim_z=4, dim_beta=3, n_components=5
    ),
    "conv64": UGVAEConfig(
        architecture="conv64",
        channels=3,
        image_size=64,
        dim_z=4,
        dim_beta=3,
        n_components=5,
        var_x=0.3,
    ),
}


def independent_set_encoder(encoder, u: torch.Tensor, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """q(β | X) of one group ``u [B, d]`` from a set encoder's weights, written out: φ per
    observation, then the mean (DeepSets) or one seed query attending over the set, head by head
    (PMA), then ρ; returns ``(mean, variance)``."""
    phi1, phi2 = encoder.phi[0], encoder.phi[2]
    e = torch.relu(u @ phi1.weight.T + phi1.bias) @ phi2.weight.T + phi2.bias  # [B, H]
    if cfg.global_encoder == "attention":
        att = encoder.attention
        hidden, heads = e.shape[1], att.num_heads
        wq, wk, wv = att.in_proj_weight.split(hidden)
        bq, bk, bv = att.in_proj_bias.split(hidden)
        seed = encoder.seed[0, 0]
        width = hidden // heads
        outputs = []
        for head in range(heads):
            cols = slice(head * width, (head + 1) * width)
            q = (seed @ wq.T + bq)[cols]
            k = (e @ wk.T + bk)[:, cols]
            v = (e @ wv.T + bv)[:, cols]
            weights = torch.softmax(k @ q / math.sqrt(width), dim=0)  # [B]
            outputs.append(weights @ v)
        attended = torch.cat(outputs) @ att.out_proj.weight.T + att.out_proj.bias

        def norm(layer, t):
            return (t - t.mean()) / torch.sqrt(
                t.var(unbiased=False) + layer.eps
            ) * layer.weight + layer.bias

        h = norm(encoder.norm1, seed + attended)
        ff = encoder.feedforward[0]
        pooled = norm(encoder.norm2, h + torch.relu(h @ ff.weight.T + ff.bias))
    else:
        pooled = e.mean(0)
    r1, r2 = encoder.rho[1], encoder.rho[3]
    out = torch.relu(torch.relu(pooled) @ r1.weight.T + r1.bias) @ r2.weight.T + r2.bias
    return out[: cfg.dim_beta], out[cfg.dim_beta :].exp()


def independent_negative_elbo(model: UGVAE, x: torch.Tensor, seed: int) -> dict[str, float]:
    """The formula of docs/model.md §4, recomputed observation by observation and component by component."""
    cfg = model.config
    g, b = x.shape[:2]
    torch.manual_seed(seed)  # replay the two noise draws of forward(): z first, then beta
    terms = {"reconstruction": 0.0, "local_kl": 0.0, "mixture_kl": 0.0, "global_kl": 0.0}
    h = model.pre_encoder(x.flatten(0, 1)).view(g, b, -1)
    local = model.local_encoder(h)
    local_mean, local_var = local[..., : cfg.dim_z], local[..., cfg.dim_z :].exp()
    eps_z = torch.randn_like(local_mean)
    z = local_mean + eps_z * local_var.sqrt()
    probs = torch.softmax(model.mixture_encoder(z), -1)
    # each image's factor of q(beta | X): from [h; pi], pi alone or h alone; its log-variance
    # predicted with the mean, or one learned value per beta dimension shared by all images
    factor_input = {"features_and_probs": torch.cat([h, probs], -1), "probs": probs, "features": h}
    u = factor_input[cfg.global_factor_input]
    if cfg.global_encoder == "product":
        factors = model.global_encoder(u)
        if cfg.global_factor_variance == "shared":
            factors = torch.cat([factors, model.global_factor_log_var.expand_as(factors)], -1)
    eps_beta = torch.randn(g, cfg.dim_beta, dtype=x.dtype)
    priors = model.component_priors
    for gi in range(g):
        if cfg.global_encoder == "product":
            m, log_v = factors[gi, :, : cfg.dim_beta], factors[gi, :, cfg.dim_beta :]
            precision = (1.0 / log_v.exp()).sum(0) + (1.0 if cfg.global_prior_factor else 0.0)
            beta_var = 1.0 / precision
            beta_mean = beta_var * (m / log_v.exp()).sum(0)
        else:
            beta_mean, beta_var = independent_set_encoder(model.global_encoder, u[gi], cfg)
        beta = beta_mean + eps_beta[gi] * beta_var.sqrt()
        q_beta = Normal(beta_mean, beta_var.sqrt())
        terms["global_kl"] += kl_divergence(
            q_beta, Normal(torch.zeros_like(beta), torch.ones_like(beta))
        ).sum()
        # the K prior networks, one at a time, from their stacked weights
        component = []
        for k in range(cfg.n_components):
            hidden = torch.relu(beta @ priors.weight1[k] + priors.bias1[k])
            out = hidden @ priors.weight2[k] + priors.bias2[k]
            component.append(
                Normal(out[: cfg.dim_z], torch.exp(torch.tanh(out[cfg.dim_z :])).sqrt())
            )
        if cfg.mixture_prior == "global":  # p(d | beta) = Cat(softmax(W beta + b))
            p_d = Categorical(
                logits=beta @ model.mixture_weights.weight.T + model.mixture_weights.bias
            )
        else:  # the paper's Cat(1/K)
            p_d = Categorical(
                probs=torch.full((cfg.n_components,), 1.0 / cfg.n_components, dtype=x.dtype)
            )
        for i in range(b):
            x_mean = model.decoder(torch.cat([z[gi, i], beta]).unsqueeze(0))[0]
            terms["reconstruction"] -= Normal(x_mean, math.sqrt(cfg.var_x)).log_prob(x[gi, i]).sum()
            q_z = Normal(local_mean[gi, i], local_var[gi, i].sqrt())
            for k in range(cfg.n_components):
                terms["local_kl"] += probs[gi, i, k] * kl_divergence(q_z, component[k]).sum()
            terms["mixture_kl"] += kl_divergence(Categorical(probs=probs[gi, i]), p_d)
    result = {name: float(value) / (g * b) for name, value in terms.items()}
    result["loss"] = sum(result.values())
    return result


OPTIONS = {  # the paper's options, then each option of the project's variant, then all of them
    "paper": {},
    "global_prior_factor": {"global_prior_factor": True},
    "probs_factors": {"global_factor_input": "probs"},
    "features_factors": {"global_factor_input": "features"},
    "shared_variance": {"global_factor_variance": "shared"},
    "mixture_prior_global": {"mixture_prior": "global"},
    "variant": {
        "global_factor_input": "probs",
        "global_factor_variance": "shared",
        "mixture_prior": "global",
    },
    "deepsets": {"global_encoder": "deepsets"},
    "attention": {"global_encoder": "attention"},
    "attention_probs_global": {
        "global_encoder": "attention",
        "global_factor_input": "probs",
        "mixture_prior": "global",
    },
}


@pytest.mark.parametrize("arch", sorted(CONFIGS))
@pytest.mark.parametrize("options", sorted(OPTIONS))
def test_elbo_matches_torch_distributions(arch, options):
    cfg = UGVAEConfig.from_dict({**CONFIGS[arch].to_dict(), **OPTIONS[options]})
    torch.manual_seed(0)
    model = UGVAE(cfg).double().eval()
    if model.global_factor_log_var is not None:  # not its zero start: a value that can be wrong
        with torch.no_grad():
            model.global_factor_log_var.normal_(0.0, 0.5)
    x = torch.rand(2, 3, cfg.channels, cfg.image_size, cfg.image_size, dtype=torch.float64)
    torch.manual_seed(123)
    with torch.no_grad():
        ours = model(x).terms.as_floats()
        expected = independent_negative_elbo(model, x, seed=123)
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, rel=1e-4, abs=1e-8), name
    # the terms are not trivially zero: every one of them is checked for real
    assert all(abs(expected[name]) > 1e-6 for name in ("local_kl", "mixture_kl", "global_kl"))


def test_product_of_gaussians_closed_form():
    means = torch.tensor([[[1.0, 0.0], [3.0, 4.0]]])  # [G=1, B=2, D=2]
    variances = torch.tensor([[[1.0, 2.0], [1.0, 0.5]]])
    mean, var = product_of_gaussians(means, variances.log())
    # precisions 1+1 = 2 and 0.5+2 = 2.5
    assert torch.allclose(var, torch.tensor([[0.5, 0.4]]))
    assert torch.allclose(mean, torch.tensor([[(1 + 3) * 0.5, (0 * 0.5 + 4 * 2) * 0.4]]))
    mean_p, var_p = product_of_gaussians(means, variances.log(), include_prior=True)
    assert torch.allclose(var_p, torch.tensor([[1 / 3, 1 / 3.5]]))
    assert torch.allclose(mean_p, torch.tensor([[4 / 3, 8 / 3.5]]))


@pytest.mark.parametrize("encoder", ["product", "deepsets", "attention"])
@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_global_code_is_permutation_invariant_and_per_group(arch, encoder):
    cfg = UGVAEConfig.from_dict({**CONFIGS[arch].to_dict(), "global_encoder": encoder})
    torch.manual_seed(1)
    model = UGVAE(cfg).eval()
    x = torch.rand(3, 6, cfg.channels, cfg.image_size, cfg.image_size)
    enc = model.encode(x)
    perm = torch.randperm(6)
    enc_perm = model.encode(x[:, perm])
    assert torch.allclose(enc.global_mean, enc_perm.global_mean, atol=1e-5)
    assert torch.allclose(enc.global_var, enc_perm.global_var, atol=1e-6)
    assert torch.allclose(enc.local_mean[:, perm], enc_perm.local_mean, atol=1e-5)
    # group 0's global code does not depend on the other groups of the step
    other = torch.rand(2, 6, cfg.channels, cfg.image_size, cfg.image_size)
    enc_other = model.encode(torch.cat([x[:1], other]))
    assert torch.allclose(enc.global_mean[0], enc_other.global_mean[0], atol=1e-5)
    assert not torch.allclose(enc.global_mean[1], enc_other.global_mean[1], atol=1e-5)
    assert enc.global_mean.shape == (3, cfg.dim_beta)
    assert enc.local_var.shape == (3, 6, cfg.dim_z)
    assert enc.mixture_probs.shape == (3, 6, cfg.n_components)
    assert torch.allclose(enc.mixture_probs.sum(-1), torch.ones(3, 6), atol=1e-5)


def test_categorical_kls_take_a_zero_probability_as_contributing_nothing():
    """A saturated softmax gives probabilities of exactly 0: 0·log 0 is 0 in each categorical
    KL, as torch.distributions takes it (a plain ``p * log(p)`` would be NaN there)."""
    logits = torch.tensor([[200.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [-200.0, 0.0, 0.0, 200.0]])
    probs = torch.softmax(logits, -1).unsqueeze(0)  # [G=1, B=3, K=4]
    assert (probs == 0).sum() == 6 and (probs == 1).sum() == 2  # float32 underflow: exact 0, 1
    uniform = Categorical(probs=torch.full((4,), 0.25))
    per_image = [kl_divergence(Categorical(probs=p), uniform).item() for p in probs[0]]
    assert per_image[0] == pytest.approx(math.log(4))  # one-hot against uniform: log K
    assert categorical_uniform_kl(probs)[0].tolist() == pytest.approx(per_image, abs=1e-6)
    assert uniform_mixture_kl(probs).item() == pytest.approx(sum(per_image), abs=1e-6)
    prior_log_probs = torch.log_softmax(torch.tensor([[0.5, -1.0, 2.0, 0.0]]), -1)  # [G, K]
    prior = Categorical(logits=prior_log_probs[0])
    expected = [kl_divergence(Categorical(probs=p), prior).item() for p in probs[0]]
    got = categorical_kl(probs, prior_log_probs.unsqueeze(1))[0]
    assert torch.isfinite(got).all() and got.tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("options", ["paper", "mixture_prior_global"])
def test_elbo_is_finite_and_exact_when_the_mixture_encoder_saturates(options):
    """Every image's q(d | z) one-hot, its other probabilities exactly 0 (logits 1000 apart):
    the negative ELBO stays finite and equals the independent torch.distributions one."""
    cfg = UGVAEConfig.from_dict({**CONFIGS["mlp28"].to_dict(), **OPTIONS[options]})
    torch.manual_seed(0)
    model = UGVAE(cfg).double().eval()
    with torch.no_grad():  # the last layer's logits: 1000 for component 0, 0 for the others
        last = model.mixture_encoder[-1]
        last.weight.zero_()
        last.bias.zero_()
        last.bias[0] = 1000.0
    x = torch.rand(2, 3, cfg.channels, cfg.image_size, cfg.image_size, dtype=torch.float64)
    torch.manual_seed(123)
    with torch.no_grad():
        output = model(x)
        expected = independent_negative_elbo(model, x, seed=123)
    probs = output.encoding.mixture_probs
    assert (probs[..., 0] == 1).all() and (probs[..., 1:] == 0).all()  # saturated for real
    ours = output.terms.as_floats()
    assert all(math.isfinite(value) for value in ours.values()), ours
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, rel=1e-4, abs=1e-8), name
    if options == "paper":  # one-hot against Cat(1/K): log K per image
        assert ours["mixture_kl"] == pytest.approx(math.log(cfg.n_components))
