"""β-VAE, GMVAE, ML-VAE and the Neural Statistician: each ELBO against an independent
torch.distributions computation on the same noise, gradients to every parameter, the shared
API, the model file and a few training steps."""

import io
import math

import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

from ugvae_pipeline.models import (
    GMVAE,
    MLVAE,
    BetaVAE,
    BetaVAEConfig,
    GMVAEConfig,
    LatentNoise,
    MLVAEConfig,
    NeuralStatistician,
    NeuralStatisticianConfig,
    load_model,
    save_model,
)

SHAPES = {
    "mlp28": dict(architecture="mlp28", channels=1, image_size=28, var_x=0.2),
    "conv64": dict(architecture="conv64", channels=3, image_size=64, var_x=0.3),
}
MODELS = {
    "beta_vae": (BetaVAE, lambda shape: BetaVAEConfig(**shape, dim_z=4, beta=2.5)),
    "gmvae": (GMVAE, lambda shape: GMVAEConfig(**shape, dim_z=4, n_components=5)),
    "mlvae": (MLVAE, lambda shape: MLVAEConfig(**shape, dim_z=4, dim_beta=3)),
    "neural_statistician": (
        NeuralStatistician,
        lambda shape: NeuralStatisticianConfig(**shape, dim_z=4, dim_beta=3),
    ),
}
G, B = 2, 3


def build(name, arch):
    model_cls, make_config = MODELS[name]
    torch.manual_seed(0)
    model = model_cls(make_config(SHAPES[arch])).double().eval()
    x = torch.rand(
        G,
        B,
        model.config.channels,
        model.config.image_size,
        model.config.image_size,
        dtype=torch.float64,
    )
    noise = LatentNoise.draw(model.config, G, B, torch.Generator().manual_seed(7))
    return model, x, LatentNoise(noise.local_code.double(), noise.global_code.double())


def independent_terms(name, model, x, noise):
    """Each model's negative ELBO, image by image and component by component."""
    cfg = model.config
    n = G * B
    terms = {"reconstruction": 0.0, "local_kl": 0.0, "mixture_kl": 0.0, "global_kl": 0.0}
    standard = Normal(torch.zeros((), dtype=x.dtype), torch.ones((), dtype=x.dtype))
    for g in range(G):
        content = p_z = None
        if name == "neural_statistician":
            # statistic network written out: φ per image, the mean over the group, then ρ
            stat = model.statistic_network
            h = model.pre_encoder(x[g])  # [B, 256]
            pooled = stat.phi[2](torch.relu(stat.phi[0](h))).mean(0)
            out = stat.rho[3](torch.relu(stat.rho[1](torch.relu(pooled))))
            q_c = Normal(out[: cfg.dim_beta], (0.5 * out[cfg.dim_beta :]).exp())
            content = q_c.loc + noise.global_code[g] * q_c.scale
            terms["global_kl"] += kl_divergence(q_c, standard).sum()
            prior = model.conditional_prior[2](torch.relu(model.conditional_prior[0](content)))
            p_z = Normal(prior[: cfg.dim_z], torch.exp(torch.tanh(prior[cfg.dim_z :])).sqrt())
        if name == "mlvae":
            factors = model.group_encoder(model.pre_encoder(x[g]))  # [B, 2·dim_beta]
            m, v = factors[:, : cfg.dim_beta], factors[:, cfg.dim_beta :].exp()
            var_c = 1.0 / (1.0 / v).sum(0)
            q_c = Normal(var_c * (m / v).sum(0), var_c.sqrt())
            content = q_c.loc + noise.global_code[g] * q_c.scale
            terms["global_kl"] += kl_divergence(q_c, standard).sum()
        for i in range(B):
            h_i = model.pre_encoder(x[g, i : i + 1])[0]
            if name == "neural_statistician":  # q(z | x, c): one linear map of [h_i ; c]
                weight = torch.cat([model.local_encoder.weight, model.context_to_local.weight], 1)
                local = weight @ torch.cat([h_i, content]) + model.local_encoder.bias
            else:
                local = model.local_encoder(h_i)
            q_z = Normal(local[: cfg.dim_z], local[cfg.dim_z :].exp().sqrt())
            z = q_z.loc + noise.local_code[g, i] * q_z.scale
            code = z if content is None else torch.cat([z, content])
            x_mean = model.decoder(code.unsqueeze(0))[0]
            terms["reconstruction"] -= Normal(x_mean, math.sqrt(cfg.var_x)).log_prob(x[g, i]).sum()
            if name == "gmvae":
                probs = torch.softmax(model.mixture_encoder(z), -1)
                for k in range(cfg.n_components):
                    p_k = Normal(
                        model.prior_means[k], torch.exp(torch.tanh(model.prior_pre_vars[k])).sqrt()
                    )
                    terms["local_kl"] += probs[k] * kl_divergence(q_z, p_k).sum()
                uniform = Categorical(probs=torch.full_like(probs, 1.0 / cfg.n_components))
                terms["mixture_kl"] += kl_divergence(Categorical(probs=probs), uniform)
            else:  # p(z | c) for the Neural Statistician, else N(0, I)
                terms["local_kl"] += kl_divergence(q_z, standard if p_z is None else p_z).sum()
    result = {key: float(value) / n for key, value in terms.items()}
    weight = cfg.beta if name == "beta_vae" else 1.0
    result["loss"] = (
        result["reconstruction"]
        + weight * result["local_kl"]
        + result["mixture_kl"]
        + result["global_kl"]
    )
    return result


@pytest.mark.parametrize("arch", sorted(SHAPES))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_elbo_matches_torch_distributions(name, arch):
    model, x, noise = build(name, arch)
    with torch.no_grad():
        ours = model(x, noise).terms.as_floats()
        expected = independent_terms(name, model, x, noise)
    # float64 throughout: each term is a sum of at most a few tens of thousands of products
    # (12,288 pixels an image on conv64), whose rounding differs between the batched and the
    # image-by-image computation by ~1e-12 relative on any CPU; rel=1e-4 leaves that margin
    # by far while a wrong term (a missing 1/B, another prior) is off by percents or more.
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, rel=1e-4, abs=1e-10), key
    present = {
        "beta_vae": ("local_kl",),
        "gmvae": ("local_kl", "mixture_kl"),
        "mlvae": ("local_kl", "global_kl"),
        "neural_statistician": ("local_kl", "global_kl"),
    }
    assert all(abs(expected[key]) > 1e-6 for key in present[name])  # checked for real, not 0 = 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_noise_argument_is_used(name):
    model, x, noise = build(name, "mlp28")
    with torch.no_grad():
        same = model(x, noise).loss
        again = model(x, noise).loss
        other = model(x, LatentNoise(noise.local_code + 1.0, noise.global_code + 1.0)).loss
    assert same == again and same != other


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_parameter_receives_a_gradient(name):
    model, x, noise = build(name, "mlp28")
    model.train()
    model(x, noise).loss.backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert missing == []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shared_api_shapes(name):
    model, x, _ = build(name, "mlp28")
    cfg = model.config
    enc = model.encode(x)
    global_dim = cfg.dim_beta if model.has_group_latent else cfg.dim_z
    k = cfg.n_components if name == "gmvae" else 1
    assert enc.global_mean.shape == enc.global_var.shape == (G, global_dim)
    assert enc.local_mean.shape == enc.local_var.shape == (G, B, cfg.dim_z)
    assert enc.mixture_probs.shape == (G, B, k)
    assert torch.allclose(enc.mixture_probs.sum(-1), torch.ones(G, B, dtype=x.dtype))
    if not model.has_group_latent:  # i.i.d.: group fields are group means of the local ones
        assert torch.allclose(enc.global_mean, enc.local_mean.mean(1))
        assert torch.allclose(enc.global_var, enc.local_var.mean(1))
    out = model(x)
    assert out.reconstruction.shape == x.shape
    assert torch.allclose(model.decode(out.local_code, out.global_code), out.reconstruction)
    assert model.sample(2, 4, torch.Generator().manual_seed(0)).shape == (2, 4, *x.shape[2:])
    with pytest.raises(ValueError, match="expected groups of images"):
        model.encode(x[0])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_file_round_trip(name):
    model, x, noise = build(name, "conv64")
    model.train()
    buffer = io.BytesIO()
    save_model(model, buffer)
    loaded = load_model(buffer.getvalue())  # float32 parameters, as every model is built
    assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.double()(x, noise).loss, model(x, noise).loss)


@pytest.mark.parametrize(
    "config_cls, params, message",
    [
        (BetaVAEConfig, {"beta": -1.0}, "model.beta must be a number >= 0"),
        (BetaVAEConfig, {"dim_beta": 3}, "unknown model parameter(s) ['dim_beta']"),
        (GMVAEConfig, {"n_components": 0}, "model.n_components must be an integer >= 1"),
        (MLVAEConfig, {"architecture": "conv64"}, "does not fit architecture 'conv64'"),
        (MLVAEConfig, {"var_x": 0}, "model.var_x must be > 0"),
        (NeuralStatisticianConfig, {"dim_beta": 0}, "model.dim_beta must be an integer >= 1"),
        (NeuralStatisticianConfig, {"beta": 1.0}, "unknown model parameter(s) ['beta']"),
    ],
)
def test_bad_baseline_parameters_are_named(config_cls, params, message):
    with pytest.raises(ValueError) as err:
        config_cls.from_dict(params)
    assert message in str(err.value)
    assert config_cls.from_dict({"var_x": 1}).var_x == 1.0  # an integer var_x becomes a float


def structured_groups(n_groups: int, generator: torch.Generator) -> torch.Tensor:
    """``[n_groups, B, 1, 28, 28]`` toy groups: group g draws a bar in its own band of rows
    (g mod 4), each image at its own intensity, plus pixel noise."""
    band = torch.arange(28) // 7 == torch.arange(n_groups).remainder(4)[:, None]  # [G, 28 rows]
    intensity = 0.5 + 0.5 * torch.rand(n_groups, B, 1, 1, 1, generator=generator)
    noise = 0.05 * torch.rand(n_groups, B, 1, 28, 28, generator=generator)
    return (noise + intensity * band[:, None, None, :, None]).clamp(0, 1)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_few_dozen_adam_steps_lower_the_loss(name):
    model_cls, make_config = MODELS[name]
    torch.manual_seed(0)
    model = model_cls(make_config(SHAPES["mlp28"]))
    generator = torch.Generator().manual_seed(1)
    train, heldout = structured_groups(8, generator), structured_groups(4, generator)
    noise = LatentNoise.draw(model.config, 4, B, generator)

    def heldout_loss() -> float:
        with torch.no_grad():
            return float(model(heldout, noise).loss)

    before = heldout_loss()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(40):
        optimiser.zero_grad()
        model(train).loss.backward()
        optimiser.step()
    after = heldout_loss()
    # ~480 nats per image at initialisation, 120-170 after 40 steps; the floor is the
    # likelihood's constant, 0.5 · 784 · log(2π · 0.2) ≈ 89
    assert after < before - 200, (before, after)
