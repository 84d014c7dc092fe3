"""The vectorised UG-VAE computes the loop-based (official-style) anchor's loss."""

import pytest
import torch

from benchmarks.reference import LoopUGVAE
from ugvae_pipeline.models import UGVAE, LatentNoise, UGVAEConfig

CONFIGS = {
    "mlp28": UGVAEConfig(
        "mlp28", channels=1, image_size=28, dim_z=10, dim_beta=20, n_components=10
    ),
    "conv64": UGVAEConfig(
        "conv64", channels=3, image_size=64, dim_z=20, dim_beta=20, n_components=20
    ),
}


@pytest.mark.parametrize("architecture", sorted(CONFIGS))
@pytest.mark.parametrize("n_groups, train_mode", [(1, True), (3, False)])
def test_vectorised_loss_and_gradients_equal_the_loop_anchor(architecture, n_groups, train_mode):
    # in train mode BatchNorm pools a step's images, so several groups are compared in eval mode
    config = CONFIGS[architecture]
    torch.manual_seed(0)
    model = UGVAE(config)
    anchor = LoopUGVAE(config).load_from(model)
    model.train(train_mode)
    anchor.train(train_mode)
    group_size = 12 if architecture == "mlp28" else 4
    x = torch.rand(n_groups, group_size, config.channels, config.image_size, config.image_size)
    noise = LatentNoise.draw(config, n_groups, group_size, torch.Generator().manual_seed(1))

    terms = model(x, noise).terms
    reference = anchor(x, noise)
    for name in terms.NAMES:
        torch.testing.assert_close(
            getattr(terms, name), getattr(reference, name), rtol=1e-5, atol=1e-5
        )
    assert reference.local_kl > 0 and reference.global_kl > 0  # the KL terms are exercised

    terms.loss.backward()
    reference.loss.backward()
    for k, prior in enumerate(anchor.z_prior):  # gradients reach the right component networks
        torch.testing.assert_close(
            prior[0].weight.grad, model.component_priors.weight1.grad[k].T, rtol=1e-4, atol=1e-6
        )
    torch.testing.assert_close(
        anchor.decoder[0].weight.grad, model.decoder[0].weight.grad, rtol=1e-4, atol=1e-6
    )


def test_other_noise_gives_another_loss():
    config = CONFIGS["mlp28"]
    torch.manual_seed(0)
    model = UGVAE(config)
    x = torch.rand(2, 12, 1, 28, 28)
    first = model(x, LatentNoise.draw(config, 2, 12, torch.Generator().manual_seed(1))).loss
    again = model(x, LatentNoise.draw(config, 2, 12, torch.Generator().manual_seed(1))).loss
    other = model(x, LatentNoise.draw(config, 2, 12, torch.Generator().manual_seed(2))).loss
    assert first == again and first != other
