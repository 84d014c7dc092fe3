"""Data-parallel training over whole groups reproduces one process with all the groups."""

import numpy as np
import torch

from tests.equivalence import (
    GRADIENT_RTOL,
    assert_same_adam_training,
    assert_same_gradients,
    first_moments,
    gradient_differences,
    typical_difference,
    weight_differences,
)
from ugvae_pipeline.models import UGVAE, UGVAEConfig
from ugvae_pipeline.training import checkpoint as ckpt
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.distributed import spawn_training
from ugvae_pipeline.training.trainer import train

CONFIG = UGVAEConfig("mlp28", channels=1, image_size=28, dim_z=4, dim_beta=6, n_components=3)
GROUP_SIZE = 8
LR = 5e-3  # the official step size


def _data(epochs, groups_per_epoch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(96, 1, 28, 28), dtype=np.uint8)
    # epochs x groups; the held-out groups are images the plan never uses
    train_groups = np.stack(
        [
            rng.permutation(64)[: groups_per_epoch * GROUP_SIZE].reshape(-1, GROUP_SIZE)
            for _ in range(epochs)
        ]
    )
    heldout_groups = np.arange(64, 96).reshape(4, GROUP_SIZE)
    return images, train_groups, heldout_groups


def _train(groups_per_step, devices, checkpoint_dir, epochs=2, groups_per_epoch=6):
    """Train (``devices`` Gloo processes when > 1); ``(initial, trained, history, exp_avg)``
    with Adam's first moments from the checkpoint written after the last epoch."""
    images, train_groups, heldout_groups = _data(epochs, groups_per_epoch)
    torch.manual_seed(3)
    model = UGVAE(CONFIG)
    config = TrainConfig(
        epochs=epochs,
        learning_rate=LR,
        group_size=GROUP_SIZE,
        groups_per_step=groups_per_step,
        seed=7,
        device="cpu",
        precision="fp32",
        progress="off",
        devices=devices,
        checkpoint_every=epochs,
        checkpoint_dir=str(checkpoint_dir),
    )
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    names = [name for name, _ in model.named_parameters()]
    fit = spawn_training if devices > 1 else train
    trained, history = fit(model, images, train_groups, heldout_groups, config)
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(checkpoint_dir))
    return initial, trained.state_dict(), history, first_moments(state["optimizer"], names)


def test_two_gloo_processes_take_the_step_of_one_process_with_both_groups(tmp_path):
    # One step of two groups: Adam's first moment after it is 0.1 x the step's gradient, which
    # two processes of one group each compute in another order only (tests/equivalence.py:
    # within GRADIENT_RTOL on any CPU). Dropping a process's gradients halves the sum.
    *_, single = _train(2, 1, tmp_path / "single", epochs=1, groups_per_epoch=2)
    *_, parallel = _train(1, 2, tmp_path / "parallel", epochs=1, groups_per_epoch=2)
    *_, alone = _train(1, 1, tmp_path / "alone", epochs=1, groups_per_epoch=1)  # group 1 only
    assert_same_gradients(parallel, single)
    # the comparison can fail: the first group's gradient alone is far outside the tolerance
    assert min(gradient_differences(alone, single).values()) > 1000 * GRADIENT_RTOL


def test_two_gloo_processes_train_as_one_process_with_both_groups(tmp_path):
    # 2 epochs x 3 steps of the official Adam: weights within Adam's bounds for any rounding
    # (tests/equivalence.py): every weight within 2·lr·Σ_t bound(t), 90% within steps·lr/1000
    initial, single, single_history, _ = _train(2, 1, tmp_path / "single")
    _, parallel, parallel_history, _ = _train(1, 2, tmp_path / "parallel")  # 2 x 1 group
    _, halved, _, _ = _train(1, 1, tmp_path / "halved")  # a different update: 1 group a step

    assert single.keys() == parallel.keys()
    assert_same_adam_training(parallel, single, steps=6, lr=LR)
    # the comparison can fail: training moved most weights far beyond the typical bound, and
    # a run with another split of the groups ends far from both
    assert typical_difference(weight_differences(single, initial)) > 6 * LR / 10
    assert typical_difference(weight_differences(halved, single)) > 6 * LR / 100
    # the history is over all processes' images, so it matches too: means over many images of
    # losses smooth in the weights, which rounding moves by ~1e-5 relative at most (measured
    # 1e-5 for the global KL); a mean over one process's groups is off by a few percent
    assert len(parallel_history) == 2
    for column in ("train_loss", "heldout_loss", "train_global_kl"):
        np.testing.assert_allclose(parallel_history[column], single_history[column], rtol=1e-3)
