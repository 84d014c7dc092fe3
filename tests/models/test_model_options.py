import math

import pytest
import torch

from ugvae_pipeline.models.elbo import (
    ELBOTerms,
    annealed_loss,
    categorical_kl,
    categorical_uniform_kl,
    free_bits_kl,
)
from ugvae_pipeline.models.ugvae import UGVAE, UGVAEConfig
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.trainer import _global_kl_weight


def test_categorical_kl_matches_uniform_and_definition():
    probs = torch.softmax(torch.randn(3, 5, 4), -1)
    uniform = torch.full((3, 1, 4), math.log(0.25))
    torch.testing.assert_close(categorical_kl(probs, uniform), categorical_uniform_kl(probs))
    prior = torch.log_softmax(torch.randn(3, 1, 4), -1)
    expected = (probs * (probs.log() - prior)).sum(-1)
    torch.testing.assert_close(categorical_kl(probs, prior), expected)
    assert torch.all(categorical_kl(probs, probs.log()).abs() < 1e-6)


@pytest.mark.parametrize("factor_input", ["features_and_probs", "probs", "features"])
@pytest.mark.parametrize("mixture_prior", ["uniform", "global"])
@pytest.mark.parametrize(
    "variance, encoder",
    [
        ("per_observation", "product"),
        ("shared", "product"),
        ("shared", "deepsets"),
        ("per_observation", "attention"),
    ],
)
def test_every_variant_runs_the_public_api(factor_input, mixture_prior, variance, encoder):
    torch.manual_seed(0)
    model = UGVAE(
        UGVAEConfig(
            global_factor_input=factor_input,
            mixture_prior=mixture_prior,
            global_factor_variance=variance,
            global_encoder=encoder,
        )
    )
    x = torch.rand(2, 6, 1, 28, 28)
    out = model(x)
    t = out.terms
    torch.testing.assert_close(t.loss, t.reconstruction + t.local_kl + t.mixture_kl + t.global_kl)
    assert t.mixture_kl >= 0
    enc = model.encode(x)
    assert enc.global_mean.shape == (2, 20) and enc.mixture_probs.shape == (2, 6, 10)
    # q(β | X) is a product over the group: invariant to the order of the images
    perm = model.encode(x[:, torch.randperm(6)])
    torch.testing.assert_close(perm.global_mean, enc.global_mean, rtol=1e-4, atol=1e-5)
    assert model.sample(3, 4).shape == (3, 4, 1, 28, 28)
    assert model.decode(enc.local_mean, enc.global_mean).shape == x.shape
    out.loss.backward()


def test_official_has_no_mixture_weights_and_global_prior_depends_on_beta():
    assert UGVAE(UGVAEConfig()).mixture_log_prior(torch.zeros(1, 20)) is None
    model = UGVAE(UGVAEConfig(mixture_prior="global"))
    with torch.no_grad():
        model.mixture_weights.weight.zero_()
        model.mixture_weights.weight[0, 0] = 5.0
    log_prior = model.mixture_log_prior(torch.tensor([[1.0] + [0.0] * 19, [-1.0] + [0.0] * 19]))
    assert log_prior.exp().sum(-1).allclose(torch.ones(2))
    assert log_prior[0, 0] > log_prior[1, 0]
    # samples follow p(d | β): with all mass on one component, every d_i is that component
    with torch.no_grad():
        model.mixture_weights.bias.copy_(torch.tensor([50.0] + [0.0] * 9))
    assert model.mixture_log_prior(torch.zeros(1, 20)).exp()[0, 0] > 0.999


def test_probs_factor_encoder_sees_only_mixture_probs():
    model = UGVAE(UGVAEConfig(global_factor_input="probs"))
    assert model.global_encoder.in_features == 10
    assert UGVAE(UGVAEConfig()).global_encoder.in_features == 256 + 10


def test_config_validation_names_the_choices():
    with pytest.raises(ValueError, match="global_factor_input"):
        UGVAEConfig(global_factor_input="pi")
    with pytest.raises(ValueError, match="mixture_prior"):
        UGVAEConfig(mixture_prior="dirichlet")
    with pytest.raises(ValueError, match=r"model.global_encoder='set' is unknown; choose one of"):
        UGVAEConfig(global_encoder="set")
    with pytest.raises(ValueError, match=r"global_prior_factor=true needs model.global_encoder"):
        UGVAEConfig(global_encoder="deepsets", global_prior_factor=True)
    with pytest.raises(ValueError, match="global_kl_warmup_epochs"):
        TrainConfig(global_kl_warmup_epochs=-1)
    assert UGVAEConfig.from_dict({"mixture_prior": "global"}).mixture_prior == "global"


def test_global_kl_warmup_schedule_and_loss():
    config = TrainConfig(global_kl_warmup_epochs=2)
    assert _global_kl_weight(config, 0, 10) == 0.0
    assert _global_kl_weight(config, 10, 10) == 0.5
    assert _global_kl_weight(config, 25, 10) == 1.0
    assert _global_kl_weight(TrainConfig(), 0, 10) == 1.0
    one = torch.tensor(1.0)
    terms = ELBOTerms(
        loss=torch.tensor(10.0),
        reconstruction=one * 6,
        local_kl=one,
        mixture_kl=one,
        global_kl=one * 2,
    )
    assert annealed_loss(terms, 1.0) == 10.0
    assert annealed_loss(terms, 0.25) == pytest.approx(8.5)


def test_free_bits_floor_each_dimensions_mean_kl_as_torch_distributions_computes_it():
    from torch.distributions import Normal, kl_divergence

    torch.manual_seed(0)
    model = UGVAE(UGVAEConfig(dim_beta=6, n_components=4))
    x = torch.rand(3, 8, 1, 28, 28)
    output = model(x)
    mean, var = output.encoding.global_mean, output.encoding.global_var
    n_images = 3 * 8
    # λ = 0: the ELBO's own global KL. Only the summation order differs (over dimensions then
    # groups, or groups then dimensions): float32 rounding of 18 terms, about 1e-7 relative on
    # any CPU, inside assert_close's float32 defaults (rtol 1.3e-6, atol 1e-5)
    torch.testing.assert_close(free_bits_kl(mean, var, 0.0, n_images), output.terms.global_kl)
    # independently: each dimension's KL by torch.distributions, averaged over the groups,
    # floored at λ; λ is set between the dimensions' KLs so that some are floored, some not
    per_group = kl_divergence(Normal(mean, var.sqrt()), Normal(0.0, 1.0)).detach()  # [G, dim]
    per_dim = per_group.mean(0)
    # λ below the group mean of the dimension whose groups differ most, above its smallest
    # group: the floor is on the mean over groups, not on each group
    j = int((per_group.max(0).values - per_group.min(0).values).argmax())
    free_bits = float(per_group[:, j].min() + per_dim[j]) / 2
    expected = per_dim.clamp(min=free_bits).sum() * 3 / n_images
    floored = free_bits_kl(mean, var, free_bits, n_images)
    # torch.distributions computes the KL by another formula (variance ratio, log of it):
    # float32 rounding differs by a few ulp per term, far inside 1e-5 relative; flooring each
    # group rather than the mean moves it by ~1e-3 relative (checked), so that still fails
    torch.testing.assert_close(floored, expected, rtol=1e-5, atol=1e-6)
    assert floored > output.terms.global_kl  # the floor only adds
    # a dimension below the floor gets no gradient from the global KL
    loss = annealed_loss(output.terms, 1.0, floored)
    torch.testing.assert_close(
        loss, output.terms.loss - output.terms.global_kl + floored, rtol=1e-6, atol=1e-6
    )
    grad = torch.autograd.grad(floored, mean, retain_graph=True)[0]
    below = per_dim < free_bits
    assert below.any() and (~below).any()
    assert torch.all(grad[:, below] == 0) and torch.all(grad[:, ~below] != 0)


def test_shared_variance_probs_factors_give_linear_function_of_mean_probs():
    torch.manual_seed(1)
    model = UGVAE(UGVAEConfig(global_factor_input="probs", global_factor_variance="shared"))
    with torch.no_grad():
        model.global_factor_log_var.copy_(torch.linspace(-1, 1, 20))
    x = torch.rand(3, 16, 1, 28, 28)
    enc = model.encode(x)
    expected = model.global_encoder(enc.mixture_probs.mean(1))  # the mean of linear factors
    torch.testing.assert_close(enc.global_mean, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        enc.global_var, torch.exp(torch.linspace(-1, 1, 20)).expand(3, 20) / 16
    )
    with pytest.raises(ValueError, match="global_factor_variance"):
        UGVAEConfig(global_factor_variance="tied")


def test_conv28_architecture_runs_the_model():
    model = UGVAE(
        UGVAEConfig(architecture="conv28", global_factor_input="probs", mixture_prior="global")
    )
    x = torch.rand(2, 5, 1, 28, 28)
    assert model.encode(x).local_mean.shape == (2, 5, 10)
    assert model(x).reconstruction.shape == x.shape


def test_halves_info_nce_is_the_cross_entropy_of_finding_each_partner():
    from torch.distributions import Categorical

    from ugvae_pipeline.models.elbo import halves_info_nce

    torch.manual_seed(0)
    first, second = torch.randn(5, 4), torch.randn(5, 4)
    # independently: each half's partner as a category of the cosine similarities / 0.1
    cosine = torch.nn.functional.cosine_similarity(first[:, None], second[None], dim=-1) / 0.1
    target = torch.arange(5)
    expected = -0.5 * (
        Categorical(logits=cosine).log_prob(target).mean()
        + Categorical(logits=cosine.T).log_prob(target).mean()
    )
    # another formula for the same float32 numbers (cosine_similarity, log_softmax): a few
    # ulp apart on any CPU, inside assert_close's float32 defaults
    torch.testing.assert_close(halves_info_nce(first, second), expected)
    # codes that say nothing about the pairing: log G; codes that find it: near 0
    same = torch.ones(5, 4)
    torch.testing.assert_close(halves_info_nce(same, same), torch.tensor(math.log(5)))
    assert halves_info_nce(torch.eye(5), torch.eye(5)) < 1e-3


def test_contrastive_halves_add_a_term_outside_the_elbo_on_the_halves_codes():
    from ugvae_pipeline.models.elbo import halves_info_nce
    from ugvae_pipeline.models.outputs import LatentNoise

    torch.manual_seed(0)
    config = UGVAEConfig(global_factor_input="probs", global_factor_variance="shared")
    plain = UGVAE(config)
    model = UGVAE(UGVAEConfig.from_dict({**config.to_dict(), "contrastive_weight": 2.0}))
    model.load_state_dict(plain.state_dict())
    x = torch.rand(3, 8, 1, 28, 28)
    # no local noise: z is its mean, so each half's q(β | ·) is what encoding the half gives
    noise = LatentNoise(torch.zeros(3, 8, config.dim_z), torch.randn(3, config.dim_beta))
    out = model(x, noise)
    reference = plain(x, noise)
    for name in ELBOTerms.NAMES:  # the ELBO is the paper's: the term is outside it
        torch.testing.assert_close(getattr(out.terms, name), getattr(reference.terms, name))
    assert reference.auxiliary is None
    halves = model.encode(x[:, :4]).global_mean, model.encode(x[:, 4:]).global_mean
    expected = 2.0 * halves_info_nce(*halves) / 8
    # the halves are encoded in one batch of 3 groups here and as groups of 4 images in the
    # forward pass: the same operations on other shapes, so CPU kernels may round the last
    # float32 bits differently (~1e-7 relative); 1e-5 leaves room, while swapping or
    # mis-cutting the halves changes the loss at the first digits
    torch.testing.assert_close(out.auxiliary, expected, rtol=1e-5, atol=1e-6)
    out.auxiliary.backward()
    assert model.global_encoder.weight.grad.abs().sum() > 0  # it trains the global encoder
    assert model.eval()(x, noise).auxiliary is None  # held-out losses are the ELBO's alone


@pytest.mark.parametrize(
    "model_params, train_options, message",
    [
        (
            {"name": "gmvae", "n_components": 3},
            {"global_kl_free_bits": 0.5},
            r"train.global_kl_free_bits=0.5 .*GMVAE.*set it to 0",
        ),
        (
            {"name": "ugvae", "contrastive_weight": 1.0},
            {},
            r"contrastive_weight=1.0 .*train.groups_per_step=1",
        ),
    ],
)
def test_the_trainer_refuses_options_that_do_not_fit_the_model(
    model_params, train_options, message
):
    import numpy as np

    from ugvae_pipeline.models import model_config_from_params, model_for_config
    from ugvae_pipeline.training.trainer import train

    model = model_for_config(model_config_from_params(model_params))
    with pytest.raises(ValueError, match=message):
        train(
            model,
            np.zeros((64, 1, 28, 28), np.uint8),
            np.zeros((1, 2, 32), np.int64),
            np.zeros((1, 32), np.int64),
            TrainConfig(epochs=1, group_size=32, device="cpu", **train_options),
        )
    with pytest.raises(ValueError, match=r"model.contrastive_weight must be a number >= 0"):
        UGVAEConfig(contrastive_weight=-1.0)
