"""Training on the embedded MNIST digits: gradients, learning, and clear failures."""

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from tests.equivalence import (
    assert_same_adam_training,
    assert_same_gradients,
    first_moments,
    typical_difference,
    weight_differences,
)
from ugvae_pipeline.data.grouping import random_group_plan, random_groups, split_indices
from ugvae_pipeline.data.sources import load_embedded_mnist
from ugvae_pipeline.models import UGVAE, UGVAEConfig
from ugvae_pipeline.training import checkpoint as ckpt
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.seed import seed_everything
from ugvae_pipeline.training.trainer import GroupBatcher, evaluate_loss, train


@pytest.fixture(scope="module")
def mnist():
    return load_embedded_mnist(seed=0)


@pytest.mark.parametrize(
    "cfg",
    [
        UGVAEConfig(architecture="mlp28", dim_z=4, dim_beta=3, n_components=3),
        UGVAEConfig(
            architecture="conv64", channels=3, image_size=64, dim_z=4, dim_beta=3, n_components=3
        ),
    ],
    ids=["mlp28", "conv64"],
)
def test_every_parameter_receives_a_gradient(cfg):
    torch.manual_seed(0)
    model = UGVAE(cfg)
    x = torch.rand(2, 5, cfg.channels, cfg.image_size, cfg.image_size)
    model(x).loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_a_few_hundred_steps_lower_the_heldout_loss(mnist):
    images, metadata = mnist
    config = TrainConfig(epochs=3, group_size=32, groups_per_step=1, progress="off", seed=3)
    plan = random_group_plan(split_indices(metadata, "train"), 32, epochs=3, seed=3)
    heldout = random_groups(
        split_indices(metadata, "validation"), n_groups=4, group_size=64, seed=0
    )
    assert plan.shape[0] * plan.shape[1] >= 300  # a few hundred optimisation steps
    seed_everything(3)
    model = UGVAE(UGVAEConfig())
    batcher = GroupBatcher(images, torch.device("cpu"))
    torch.manual_seed(0)
    before = evaluate_loss(model, batcher, heldout, 4)["loss"]
    model, history = train(model, images, plan, heldout, config)
    torch.manual_seed(0)
    after = evaluate_loss(model, batcher, heldout, 4)["loss"]
    assert after < before - 20, (before, after)  # nats per image
    assert list(history["epoch"]) == [1, 2, 3]
    assert history["heldout_loss"].iloc[-1] < history["heldout_loss"].iloc[0]
    terms = ["reconstruction", "local_kl", "mixture_kl", "global_kl"]
    total = sum(history[f"train_{t}"] for t in terms)
    assert np.allclose(total, history["train_loss"], rtol=1e-5)
    assert not model.training and next(model.parameters()).device.type == "cpu"


def test_training_is_reproducible_from_the_seed(mnist):
    images, metadata = mnist
    config = TrainConfig(epochs=1, group_size=64, progress="off", seed=5)
    plan = random_group_plan(split_indices(metadata, "train")[:640], 64, epochs=1, seed=5)
    heldout = random_groups(split_indices(metadata, "validation"), 1, 64, seed=0)
    weights = []
    for _ in range(2):
        seed_everything(5)
        model, _ = train(UGVAE(UGVAEConfig()), images, plan, heldout, config)
        weights.append(model.state_dict())
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def test_nan_loss_stops_with_epoch_and_step(mnist):
    images, metadata = mnist
    config = TrainConfig(epochs=1, group_size=16, progress="off", log_every=1000)
    plan = random_group_plan(split_indices(metadata, "train")[:160], 16, epochs=1, seed=0)
    heldout = random_groups(split_indices(metadata, "validation"), 1, 16, seed=0)
    model = UGVAE(UGVAEConfig())
    with torch.no_grad():
        model.decoder[-3].bias[0] = float("nan")  # poisons the reconstruction from step 1
    with pytest.raises(FloatingPointError, match=r"at epoch 1, step 1;.*learning_rate"):
        train(model, images, plan, heldout, config)


def test_group_size_larger_than_the_data_is_refused(mnist):
    _, metadata = mnist
    train_idx = split_indices(metadata, "train")
    with pytest.raises(
        ValueError, match=r"group size 5000 is larger than the 3500 training images"
    ):
        random_group_plan(train_idx, 5000, epochs=1, seed=0)
    with pytest.raises(ValueError, match=r"larger than the 500 images available"):
        random_groups(split_indices(metadata, "validation"), 2, 501, seed=0)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"epochs": 0}, "train.epochs must be an integer >= 1"),
        ({"group_size": -3}, "train.group_size must be an integer >= 1"),
        ({"learning_rate": 0}, "train.learning_rate must be a number in (0, 1]"),
        ({"device": "tpu"}, "train.device='tpu' is unknown"),
        ({"precision": "fp8"}, "train.precision='fp8' is unknown"),
        ({"epoch": 3}, "unknown train parameter(s) ['epoch']"),
        (
            {"checkpoint_every": -1},
            "train.checkpoint_every must be an integer >= 0 (0: off), got -1",
        ),
        ({"checkpoint_every": 1.5}, "train.checkpoint_every must be an integer >= 0"),
        ({"resume": "yes"}, "train.resume must be true or false, got 'yes'"),
        ({"checkpoint_dir": ""}, "train.checkpoint_dir must be a non-empty path"),
        ({"checkpoint_dir": None}, "train.checkpoint_dir must be a non-empty path"),
    ],
)
def test_bad_training_parameters_are_named(params, message):
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(params)
    assert message in str(err.value)


def test_plan_with_wrong_epoch_count_is_refused(mnist):
    images, metadata = mnist
    plan = random_group_plan(split_indices(metadata, "train"), 128, epochs=2, seed=0)
    heldout = random_groups(split_indices(metadata, "validation"), 1, 128, seed=0)
    with pytest.raises(ValueError, match="holds 2 epochs of groups but train.epochs=3"):
        train(UGVAE(UGVAEConfig()), images, plan, heldout, TrainConfig(epochs=3, progress="off"))


def test_progress_off_read_by_yaml_as_false_means_off():
    # `--params train.progress=off` reaches the node as False (YAML 1.1 booleans)
    assert TrainConfig.from_dict({"progress": False}).progress == "off"


SHORT_RUN_SEED = 4
LR = 5e-3  # the official step size


def _short_run(mnist, n_groups=10, checkpoint_dir=None, **train_settings):
    """A seeded UG-VAE trained for one epoch of ``n_groups`` groups of 32 digits (a step each):
    ``(model, history)``; with ``checkpoint_dir``, checkpointed after the epoch."""
    images, metadata = mnist
    plan = random_group_plan(
        split_indices(metadata, "train")[:320], 32, epochs=1, seed=SHORT_RUN_SEED
    )[:, :n_groups]
    heldout = random_groups(split_indices(metadata, "validation"), 1, 32, seed=0)
    if checkpoint_dir is not None:
        train_settings.update(checkpoint_every=1, checkpoint_dir=str(checkpoint_dir))
    config = TrainConfig(
        epochs=1, group_size=32, progress="off", seed=SHORT_RUN_SEED, **train_settings
    )
    seed_everything(SHORT_RUN_SEED)
    return train(UGVAE(UGVAEConfig()), images, plan, heldout, config)


def _first_step_gradients(mnist, checkpoint_dir, **train_settings) -> dict:
    """The gradient of the first training step, by parameter name: Adam's first moment after
    one step is 0.1 x the gradient (read from the checkpoint written after it)."""
    model, _ = _short_run(mnist, 1, checkpoint_dir, **train_settings)
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(checkpoint_dir))
    return first_moments(state["optimizer"], [name for name, _ in model.named_parameters()])


def test_compiled_training_matches_eager(mnist, tmp_path):
    """``train.compile: true`` trains the same model: torch.compile changes only the speed.

    The compiled kernels sum in another order, so: the first step's gradients agree within
    float32 rounding of their sums (GRADIENT_RTOL), and the weights after 10 steps of the
    official Adam within Adam's bounds for any rounding (tests/equivalence.py), on any CPU and
    thread count. A compiled graph that dropped a term of the loss fails both.
    """
    results, graphs, gradients = {}, {}, {}
    for compiled in (False, True):
        torch._dynamo.reset()
        counters.clear()
        gradients[compiled] = _first_step_gradients(
            mnist, tmp_path / f"compiled={compiled}", compile=compiled
        )
        results[compiled] = _short_run(mnist, compile=compiled, learning_rate=LR)
        graphs[compiled] = counters["stats"]["unique_graphs"]
    assert graphs[False] == 0 and graphs[True] > 0  # the compiled run did run compiled graphs
    assert_same_gradients(gradients[True], gradients[False])
    (eager, eager_history), (compiled, compiled_history) = results[False], results[True]
    assert not isinstance(
        compiled, torch._dynamo.eval_frame.OptimizedModule
    )  # the plain module comes back
    assert_same_adam_training(compiled.state_dict(), eager.state_dict(), steps=10, lr=LR)
    seed_everything(SHORT_RUN_SEED)
    initial = UGVAE(UGVAEConfig()).state_dict()
    # the comparison can fail: training moved most weights far beyond the typical bound
    assert typical_difference(weight_differences(eager.state_dict(), initial)) > 10 * LR / 10
    # means over hundreds of images of losses smooth in the weights (see test_distributed.py)
    for column in ("train_loss", "heldout_loss"):
        np.testing.assert_allclose(compiled_history[column], eager_history[column], rtol=1e-3)


def test_bf16_autocast_trains_fp32_weights_with_an_fp32_objective(mnist):
    """``train.precision: bf16`` (the GPU path's autocast, here on the CPU): the networks run in
    bfloat16, the weights and the ELBO stay float32, and the losses track fp32 training."""
    images, metadata = mnist
    model = UGVAE(UGVAEConfig())
    x = GroupBatcher(images, torch.device("cpu"))(
        random_groups(split_indices(metadata, "train"), 2, 16, seed=0)
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(x)
    assert output.reconstruction.dtype == torch.bfloat16  # the decoder ran in bf16
    assert all(getattr(output.terms, name).dtype == torch.float32 for name in output.terms.NAMES)

    histories = {}
    for precision in ("fp32", "bf16"):
        trained, histories[precision] = _short_run(mnist, precision=precision)
        assert all(p.dtype == torch.float32 for p in trained.parameters())
    for column in ("train_loss", "heldout_loss"):
        fp32, bf16 = histories["fp32"][column].iloc[0], histories["bf16"][column].iloc[0]
        assert np.isfinite(bf16) and abs(bf16 - fp32) < 0.02 * abs(fp32), (column, fp32, bf16)
        assert bf16 != fp32  # bf16 did change the arithmetic
