"""A light version of scripts/stress_memory.py: resident memory does not grow with the epochs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stress_memory.py"


def _stress_module():
    spec = importlib.util.spec_from_file_location("stress_memory", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rss_does_not_grow_over_many_small_epochs():
    stress = _stress_module()
    images = np.random.default_rng(0).integers(0, 256, (384, 1, 28, 28), dtype=np.uint8)
    metadata = pd.DataFrame({"split": ["train"] * 320 + ["validation"] * 64})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script: steadier and, on a busy machine, faster
    try:
        result = stress.measure(epochs=40, n_images=320, warmup=8, images=images, metadata=metadata)
    finally:
        torch.set_num_threads(threads)
    assert result["steps"] == 400 and len(result["rss_per_epoch_mb"]) == 40
    # 320 steps after the warm-up: a leak of 16 kB per step would already exceed the bound
    assert result["growth_mb"] < 5, result
    assert result["rss_max_after_warmup_mb"] - result["rss_after_warmup_mb"] < 5, result
