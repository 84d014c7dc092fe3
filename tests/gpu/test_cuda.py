"""The GPU path on a CUDA device: the same numbers as the CPU, channels-last, pinned copies,
bf16 autocast with torch.compile, and the benchmark's GPU table.

Marked ``gpu`` and deselected by ``make test`` (CI has no GPU); ``scripts/gpu_check.sh`` runs
them on a machine with one (``python -m pytest -m gpu tests/gpu``). They need torch, numpy and
pandas only (no Kedro or MLflow), so they run under a GPU machine's own Python.
``UGVAE_GPU_TEST_DEVICE=cpu`` runs them on the CPU to check the tests themselves.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import benchmark
from ugvae_pipeline.data.grouping import random_group_plan, random_groups
from ugvae_pipeline.models import UGVAE, UGVAEConfig
from ugvae_pipeline.models.outputs import LatentNoise
from ugvae_pipeline.training import batching, trainer
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.seed import seed_everything

pytestmark = pytest.mark.gpu

DEVICE = torch.device(os.environ.get("UGVAE_GPU_TEST_DEVICE", "cuda"))
CONFIGS = {
    "mlp28": UGVAEConfig("mlp28", dim_z=10, dim_beta=20, n_components=10),
    "conv64": UGVAEConfig(
        "conv64", channels=3, image_size=64, dim_z=20, dim_beta=20, n_components=20
    ),
}


@pytest.fixture(scope="module", autouse=True)
def device_present():
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        pytest.fail(
            "no CUDA device: run these on a GPU machine (scripts/gpu_check.sh), or set UGVAE_GPU_TEST_DEVICE=cpu"
        )


def _images(config: UGVAEConfig, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(
        0, 256, (n, config.channels, config.image_size, config.image_size), dtype=np.uint8
    )


def _grads(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.detach().float().cpu().reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize("architecture", sorted(CONFIGS))
def test_loss_and_gradients_match_the_cpu(architecture, monkeypatch, request):
    """fp32 on the device (TF32 off for this comparison): the same ELBO terms and gradients as
    on the CPU for the same noise."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # no TF32 matrix products either
    request.addfinalizer(lambda: torch.set_float32_matmul_precision(precision))
    config = CONFIGS[architecture]
    torch.manual_seed(0)
    cpu_model = UGVAE(config)
    device_model = UGVAE(config).to(DEVICE)
    device_model.load_state_dict(cpu_model.state_dict())
    images = _images(config, 2 * 32)
    x = torch.from_numpy(images).float().div(255).view(2, 32, *images.shape[1:])
    noise = LatentNoise.draw(config, 2, 32, torch.Generator().manual_seed(1))
    cpu_terms = cpu_model(x, noise).terms
    device_terms = device_model(
        x.to(DEVICE), LatentNoise(noise.local_code.to(DEVICE), noise.global_code.to(DEVICE))
    ).terms
    tolerance = 1e-4
    for name in cpu_terms.NAMES:
        expected, got = getattr(cpu_terms, name).item(), getattr(device_terms, name).item()
        assert math.isclose(got, expected, rel_tol=tolerance, abs_tol=1e-3), (name, expected, got)
    cpu_terms.loss.backward()
    device_terms.loss.backward()
    expected, got = _grads(cpu_model), _grads(device_model)
    assert torch.nn.functional.cosine_similarity(expected, got, dim=0) > 0.999
    assert math.isclose(got.norm().item(), expected.norm().item(), rel_tol=1e-2)


def test_channels_last_conv64_gives_the_same_step():
    """The trainer puts conv64 in channels-last memory on CUDA; the loss and gradients do not change."""
    config = CONFIGS["conv64"]
    torch.manual_seed(0)
    plain = UGVAE(config).to(DEVICE)
    channels_last = UGVAE(config).to(DEVICE).to(memory_format=torch.channels_last)
    channels_last.load_state_dict(plain.state_dict())
    x = torch.rand(2, 16, 3, 64, 64, device=DEVICE)
    noise = LatentNoise.draw(config, 2, 16, device=DEVICE)
    losses = []
    for model in (plain, channels_last):
        loss = model(x, noise).loss
        loss.backward()
        losses.append(loss.item())
    assert math.isclose(losses[0], losses[1], rel_tol=1e-3)
    assert (
        torch.nn.functional.cosine_similarity(_grads(plain), _grads(channels_last), dim=0) > 0.999
    )
    if DEVICE.type == "cuda":
        weight = channels_last.pre_encoder[0].weight
        assert (
            weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
        )


@pytest.mark.parametrize("resident", [True, False], ids=["resident", "pinned-copies"])
def test_group_batcher_gives_the_cpu_pixels(monkeypatch, resident):
    """Images resident on the device (gathered there) or copied per step from pinned memory
    (non-blocking): the same pixels as the CPU path, in one tensor per step."""
    config = CONFIGS["mlp28"]
    images = _images(config, 300)
    if not resident:
        monkeypatch.setattr(batching, "RESIDENT_BYTES", 0)
    on_device = batching.GroupBatcher(images, DEVICE)
    assert (on_device.resident is not None) == resident
    groups = random_groups(np.arange(300), 4, 16, seed=0)
    pixels = on_device(on_device.plan(groups))
    assert pixels.device.type == DEVICE.type and pixels.shape == (4, 16, 1, 28, 28)
    expected = batching.GroupBatcher(images, torch.device("cpu"))(groups)
    # CUDA divides by 255 as a multiplication by 1/255 (one ulp from the CPU's division)
    torch.testing.assert_close(pixels.cpu(), expected, rtol=0, atol=1e-6)
    restored = (pixels * 255).round().to(torch.uint8).cpu()
    assert torch.equal(restored, torch.from_numpy(images[groups.reshape(-1)]).view(restored.shape))


def test_bf16_compiled_training_on_the_device():
    """``train.precision: auto`` (bf16 autocast on a GPU that supports it) with ``train.compile``:
    the loss falls, the terms stay finite, and the weights come back fp32 on the CPU."""
    config = CONFIGS["mlp28"]
    images = _images(config, 2000)
    plan = random_group_plan(np.arange(1600), 64, epochs=3, seed=0)
    heldout = random_groups(np.arange(1600, 2000), 2, 64, seed=0)
    seed_everything(0)
    train_config = TrainConfig(
        epochs=3,
        group_size=64,
        groups_per_step=2,
        device=str(DEVICE),
        precision="auto",
        compile=True,
        progress="off",
        seed=0,
    )
    model, history = trainer.train(UGVAE(config), images, plan, heldout, train_config)
    assert np.isfinite(history.filter(like="loss").to_numpy()).all()
    assert history["heldout_loss"].iloc[-1] < history["heldout_loss"].iloc[0]
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())
    expected = "bf16" if DEVICE.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    assert trainer.autocast_dtype("auto", DEVICE) == (
        torch.bfloat16 if expected == "bf16" else None
    )


def test_benchmark_table_on_the_device(tmp_path):
    """The benchmark's smoke run on the device: bf16 where supported, every row timed, and the
    share of the GPU's time spent in kernels in (0, 1]."""
    output = tmp_path / "gpu.csv"
    assert benchmark.main(["--quick", "--device", str(DEVICE), "--output", str(output)]) == 0
    table = pd.read_csv(output)
    assert len(table) == 12 and (table["step_ms_median"] > 0).all()
    if DEVICE.type == "cuda":
        assert set(table["device"]) == {str(DEVICE)}
        if torch.cuda.is_bf16_supported():
            assert set(table["precision"]) == {"bfloat16"}
        assert (
            table["kernel_time_fraction"].between(0, 1.05).all()
            and (table["kernel_time_fraction"] > 0).all()
        )
        assert (table["peak_memory_kind"] == "cuda_max_allocated_delta").all()
    else:
        assert table["kernel_time_fraction"].isna().all()
